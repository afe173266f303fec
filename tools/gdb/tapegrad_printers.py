"""gdb pretty-printers for tapegrad: tg::Tensor, tg::TensorImpl, tg::TapeEntry, tg::Loc.

Loaded automatically for binaries built from this tree (a .debug_gdb_scripts
section names this file) once gdb trusts the folder:
    add-auto-load-safe-path /path/to/tapegrad/tools/gdb      (in ~/.gdbinit)
or by hand:  (gdb) source tools/gdb/tapegrad_printers.py
"""
import gdb
import gdb.printing

MAX_VALUES = 8


def _ptr(shared):
    """The raw pointer inside a std::shared_ptr (libstdc++)."""
    return shared["_M_ptr"]


def _vector(v):
    start, finish = v["_M_impl"]["_M_start"], v["_M_impl"]["_M_finish"]
    return [int((start + i).dereference()) for i in range(int(finish - start))]


def _string(s):
    return s["_M_dataplus"]["_M_p"].string(length=int(s["_M_string_length"]))


def _impl_summary(impl):
    """'label' [shape] requires_grad, first values, grad state."""
    if int(impl) == 0:
        return "Tensor(undefined)"
    t = impl.dereference()
    shape, strides = _vector(t["shape"]), _vector(t["strides"])
    label = _string(t["label"])
    parts = []
    if label:
        parts.append(f"'{label}'")
    parts.append("[" + ", ".join(map(str, shape)) + "]")
    if bool(t["requires_grad"]):
        parts.append("requires_grad")
    storage = _ptr(t["storage"])
    n = 1
    for d in shape:
        n *= d
    if int(storage) != 0 and n > 0:
        base = storage.dereference()["data_"] + int(t["offset"])
        vals, idx = [], [0] * len(shape)
        for _ in range(min(n, MAX_VALUES)):  # the first logical (row-major) elements, through the strides
            off = sum(i * s for i, s in zip(idx, strides))
            vals.append(f"{float((base + off).dereference()):.6g}")
            for d in reversed(range(len(shape))):
                idx[d] += 1
                if idx[d] < shape[d]:
                    break
                idx[d] = 0
        parts.append("{" + ", ".join(vals) + (", ..." if n > MAX_VALUES else "") + "}")
    grad = _ptr(t["grad"])
    parts.append("grad=" + ("none" if int(grad) == 0 else _impl_summary(grad)))
    entry = int(t["entry"])
    if entry >= 0:
        parts.append(f"tape#{entry}")
    return "Tensor(" + " ".join(parts) + ")"


class TensorPrinter:
    def __init__(self, val):
        self.val = val

    def to_string(self):
        return _impl_summary(_ptr(self.val["impl_"]))


class TensorImplPrinter:
    def __init__(self, val):
        self.val = val

    def to_string(self):
        return _impl_summary(self.val.address)


class LocPrinter:
    def __init__(self, val):
        self.val = val

    def to_string(self):
        return f"{self.val['file_'].string()}:{int(self.val['line_'])} ({self.val['function_'].string()})"


class TapeEntryPrinter:
    def __init__(self, val):
        self.val = val

    def to_string(self):
        v = self.val
        out = _ptr(v["output"]["impl_"]).dereference()
        inputs = v["inputs"]["_M_impl"]
        n_in = int(inputs["_M_finish"] - inputs["_M_start"])
        shape = ", ".join(map(str, _vector(out["shape"])))
        return (f"TapeEntry(op={v['op'].string()} label='{_string(out['label'])}' output=[{shape}] "
                f"inputs={n_in} at {LocPrinter(v['where']).to_string()})")


def build():
    pp = gdb.printing.RegexpCollectionPrettyPrinter("tapegrad")
    pp.add_printer("Tensor", "^tg::Tensor$", TensorPrinter)
    pp.add_printer("TensorImpl", "^tg::TensorImpl$", TensorImplPrinter)
    pp.add_printer("TapeEntry", "^tg::TapeEntry$", TapeEntryPrinter)
    pp.add_printer("Loc", "^tg::Loc$", LocPrinter)
    return pp


gdb.printing.register_pretty_printer(gdb.current_objfile(), build(), replace=True)
