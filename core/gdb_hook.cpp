// The debugger's two hooks into the engine: the function backward calls at a
// break (core/break_on.h: break on `tapegrad_backward_break` in gdb) and the
// section that makes gdb load tapegrad's pretty-printers (docs/debugging.md).
// Both live here, in the object that defines the break function, so every
// binary that links the core's backward walk carries the section too.
#include "core/tape.h"

__attribute__((noinline)) void tapegrad_backward_break(const tg::TapeEntry& entry,
                                                       const tg::Tensor& grad_out) {
    asm volatile("" ::"r"(&entry), "r"(&grad_out) : "memory");  // keep the call and its arguments
}

// Ask gdb to load tapegrad's pretty-printers for any binary linking the core
// (subject to gdb's auto-load safe-path; see docs/debugging.md). The section
// holds a small inline Python script (entry type 4) instead of a file path, so
// no build-machine path is compiled in: it loads tapegrad_printers.py from
// $TAPEGRAD_DATA/gdb, else from <binary's folder>/../share/tapegrad/gdb — the
// install layout, which the build tree mirrors (cmake/install.cmake).
asm(".pushsection \".debug_gdb_scripts\", \"MS\",@progbits,1\n"
    ".byte 4\n"
    ".ascii \"gdb.inlined-script.tapegrad\\n\"\n"
    ".ascii \"import os, gdb\\n\"\n"
    ".ascii \"def _tapegrad_printers():\\n\"\n"
    ".ascii \"    here = os.path.dirname(os.path.realpath(gdb.current_objfile().filename))\\n\"\n"
    ".ascii \"    dirs = [os.path.join(os.environ[v], 'gdb') for v in ['TAPEGRAD_DATA'] if "
    "os.environ.get(v)]\\n\"\n"
    ".ascii \"    dirs.append(os.path.join(here, '..', 'share', 'tapegrad', 'gdb'))\\n\"\n"
    ".ascii \"    for d in dirs:\\n\"\n"
    ".ascii \"        p = os.path.join(d, 'tapegrad_printers.py')\\n\"\n"
    ".ascii \"        if os.path.isfile(p):\\n\"\n"
    ".ascii \"            exec(compile(open(p).read(), p, 'exec'), {'__name__': 'tapegrad_printers'})\\n\"\n"
    ".ascii \"            return\\n\"\n"
    ".ascii \"    gdb.write('tapegrad: no pretty-printers in ' + ', '.join(dirs) + ' (set TAPEGRAD_DATA)' + "
    "chr(10))\\n\"\n"
    ".ascii \"_tapegrad_printers()\\n\"\n"
    ".byte 0\n"
    ".popsection\n");
