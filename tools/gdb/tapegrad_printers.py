"""gdb pretty-printers for tapegrad: tg::Tensor, tg::TensorImpl, tg::TapeEntry, tg::Loc,
and commands for a stop in tapegrad_backward_break (docs/debugging.md):
    tg-head [HEAD] [--full]   the probe's G, ||G|| and weight-gradient norms of an attention head
    tg-entry INDEX            one tape entry and where each of its inputs came from

Loaded automatically for binaries built from this tree (a .debug_gdb_scripts
section names this file) once gdb trusts the folder:
    add-auto-load-safe-path /path/to/tapegrad/tools/gdb      (in ~/.gdbinit)
or by hand:  (gdb) source tools/gdb/tapegrad_printers.py
"""
import re

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



# ---------------------------------------------------------------------------
# Commands for a stop in tapegrad_backward_break.
#
# The break hands over `entry`, a reference into the tape's vector of entries,
# and `grad_out`. A recorded tensor names the entry that made it by index and
# tape generation, so the vector starts at &entry - entry.output.entry and any
# earlier entry is one pointer step away: walking the tape needs no call into
# the stopped program. Entries after the break's have already been walked (and
# freed) by backward; the ones before it are intact.

VIEW_OPS = ("view", "reshape", "transpose", "contiguous")


def _deref(v):
    if v.type.code in (gdb.TYPE_CODE_REF, gdb.TYPE_CODE_RVALUE_REF):
        return v.referenced_value()
    return v


def _elements(vec):
    start, finish = vec["_M_impl"]["_M_start"], vec["_M_impl"]["_M_finish"]
    return [(start + i).dereference() for i in range(int(finish - start))]


def _impl(tensor):
    """The TensorImpl* of a tg::Tensor, or None when undefined."""
    p = _ptr(tensor["impl_"])
    return None if int(p) == 0 else p


def _label(impl):
    return _string(impl.dereference()["label"]) or "(unlabelled)"


def _shape(impl):
    return _vector(impl.dereference()["shape"])


def _array(impl):
    """A tensor's values (through its strides) as a float64 numpy array."""
    import numpy as np

    t = impl.dereference()
    shape, strides = _vector(t["shape"]), _vector(t["strides"])
    if any(d == 0 for d in shape):
        return np.zeros(shape)
    if any(s < 0 for s in strides):
        raise gdb.GdbError("tapegrad: negative strides are not supported")
    span = 1 + sum((d - 1) * s for d, s in zip(shape, strides))
    base = _ptr(t["storage"]).dereference()["data_"] + int(t["offset"])
    raw = gdb.selected_inferior().read_memory(int(base), 4 * span)
    flat = np.frombuffer(bytes(raw), dtype=np.float32)
    view = np.lib.stride_tricks.as_strided(flat, shape=shape, strides=[4 * s for s in strides])
    return np.array(view, dtype=np.float64)


def _break_frame():
    """(entry, grad_out) of the tapegrad_backward_break frame at or above the selected one."""
    f = gdb.selected_frame()
    while f is not None:
        if f.name() == "tapegrad_backward_break":
            return _deref(f.read_var("entry")), _deref(f.read_var("grad_out"))
        f = f.older()
    raise gdb.GdbError("tapegrad: not stopped in tapegrad_backward_break: set TAPEGRAD_BREAK_ON (a label or "
                       "glob), `break tapegrad_backward_break` and run (tapegrad-gdb does all three)")


def _backward_step():
    try:
        return int(gdb.parse_and_eval("tg::detail::g_backward_step"))
    except gdb.error:
        return -1


class _Tape:
    """The entries up to the break's one, by index."""

    def __init__(self, entry):
        out = _impl(entry["output"])
        self.index = int(out.dereference()["entry"])
        self.generation = int(out.dereference()["generation"])
        self.base = entry.address - self.index

    def at(self, i):
        if not 0 <= i <= self.index:
            raise gdb.GdbError(f"tapegrad: entry #{i} is not readable here: entries #0..#{self.index} are "
                               f"intact, later ones were walked and freed by backward")
        return (self.base + i).dereference()

    def producer(self, impl):
        """(index, entry) of the entry that made this tensor on this tape, or None (a leaf)."""
        d = impl.dereference()
        i = int(d["entry"])
        if i < 0 or int(d["generation"]) != self.generation or i > self.index:
            return None
        return i, self.at(i)

    def linear_behind(self, tensor, what):
        """Follow first inputs back through views to the `linear` entry that made `tensor`."""
        impl = _impl(tensor)
        for _ in range(8):
            p = self.producer(impl)
            if p is None:
                break
            i, e = p
            op = e["op"].string()
            if op == "linear":
                return i, e
            if op not in VIEW_OPS:
                raise gdb.GdbError(f"tapegrad: tg-head: {what} comes from {op} (#{i}), not from a linear "
                                   f"through views: is this an mha or alt1 scores entry?")
            impl = _impl(_elements(e["inputs"])[0])
        raise gdb.GdbError(f"tapegrad: tg-head: no linear entry found behind {what}")


def _fmt(x):
    return f"{x:.8g}"


def _first_values(a):
    vals = ", ".join(f"{v:.6g}" for v in a.reshape(-1)[:MAX_VALUES])
    return "{" + vals + (", ..." if a.size > MAX_VALUES else "") + "}"


class HeadCommand(gdb.Command):
    """Probe quantities of attention heads at a break on a scores entry.

Usage: tg-head [HEAD] [--full]
At a stop in tapegrad_backward_break on an attention scores entry
('trf_blocks.L.att.scores' for mha, all heads; 'trf_blocks.L.att.heads.H.scores'
for alt1, one head), with D = grad_out (dL/dscores before the causal mask, the
1/sqrt(HS) scale folded in) it finds the attention input x on the tape (behind
the query-side linear) and prints, per head:
  G = sum over the batch of x_b^T D_b x_b   [C, C]   (the probe's G)
  g_norm = ||G||, and dwq_norm, dwk_norm (mha) or ds_norm (alt1): the norms of the
  gradients autograd is about to write into that head's rows of W_query/W_key
  (from the saved q and k) or into S (dL/dS = G^T).
The names are dynamics.csv's columns for (step, layer, head). HEAD picks one mha
head (default: all); --full prints the whole G."""

    def __init__(self):
        super().__init__("tg-head", gdb.COMMAND_DATA)

    def invoke(self, arg, from_tty):
        try:
            import numpy as np
        except ImportError:
            raise gdb.GdbError("tapegrad: tg-head needs numpy in gdb's Python (Debian: python3-numpy)")
        args = gdb.string_to_argv(arg)
        full = "--full" in args
        args = [a for a in args if a != "--full"]
        if len(args) > 1 or (args and not args[0].isdigit()):
            raise gdb.GdbError("tapegrad: usage: tg-head [HEAD] [--full]")
        entry, grad_out = _break_frame()
        tape = _Tape(entry)
        out = _impl(entry["output"])
        label, op = _label(out), entry["op"].string()
        m = re.match(r"^trf_blocks\.(\d+)\.att\.(?:heads\.(\d+)\.)?scores$", label)
        if op != "matmul" or not m:
            raise gdb.GdbError(f"tapegrad: tg-head: the break entry is '{label}' ({op}), not an attention "
                               f"scores matmul; break on 'trf_blocks.L.att.scores' (mha) or "
                               f"'trf_blocks.L.att.heads.H.scores' (alt1)")
        layer, alt1 = int(m.group(1)), m.group(2) is not None
        ins = _elements(entry["inputs"])
        qi, qe = tape.linear_behind(ins[0], "the query side")
        ki = tape.producer(_impl(ins[1]))  # alt1: x^T, a transpose of x; mha: k^T, behind W_key
        x = _impl(_elements(qe["inputs"])[0])
        if alt1:
            if ki is None or int(_ptr(_elements(ki[1]["inputs"])[0]["impl_"])) != int(x):
                raise gdb.GdbError("tapegrad: tg-head: the key side of this alt1 scores is not x^T")
            sides = f"'{_label(_impl(qe['output']))}' (#{qi})"
        else:
            kli, kle = tape.linear_behind(ins[1], "the key side")
            if int(_impl(_elements(kle["inputs"])[0])) != int(x):
                raise gdb.GdbError("tapegrad: tg-head: the query and key linears read different inputs")
            sides = f"'{_label(_impl(qe['output']))}' (#{qi}) and '{_label(_impl(kle['output']))}' (#{kli})"
        xp = tape.producer(x)
        where = f"tape #{xp[0]}" if xp else "a leaf"
        D = _array(_impl(grad_out))
        X = _array(x)
        print(f"tg-head: step {_backward_step()}, layer {layer}, {'alt1' if alt1 else 'mha'} scores "
              f"'{label}' (tape #{tape.index}), grad_out {list(D.shape)}")
        print(f"  x = '{_label(x)}' {list(X.shape)} ({where}), the input of {sides}")
        if alt1:
            heads = [(int(m.group(2)), D)]
        else:
            nh = D.shape[1]
            picked = [int(args[0])] if args else list(range(nh))
            for h in picked:
                if h >= nh:
                    raise gdb.GdbError(f"tapegrad: tg-head: head {h} out of range (this layer has {nh})")
            heads = [(h, D[:, h]) for h in picked]
            Q, KT = _array(_impl(ins[0])), _array(_impl(ins[1]))
        for h, Dh in heads:
            G = np.tensordot(X, Dh @ X, axes=([0, 1], [0, 1]))  # sum_b x_b^T (D_b x_b)   [C, C]
            line = f"  head {h}: g_norm {_fmt(np.linalg.norm(G))}"
            if alt1:
                line += f"  ds_norm {_fmt(np.linalg.norm(G.T))}"  # dL/dS = G^T
            else:
                Kh, Qh = np.transpose(KT[:, h], (0, 2, 1)), Q[:, h]  # [B, T, HS]
                dWq = np.tensordot(Dh @ Kh, X, axes=([0, 1], [0, 1]))  # dL/dq = D k
                dWk = np.tensordot(np.transpose(Dh, (0, 2, 1)) @ Qh, X, axes=([0, 1], [0, 1]))
                line += f"  dwq_norm {_fmt(np.linalg.norm(dWq))}  dwk_norm {_fmt(np.linalg.norm(dWk))}"
            print(line)
            print(f"    G = sum_b x_b^T D_b x_b {list(G.shape)} {_first_values(G)}")
            if full:
                print(np.array2string(G, precision=6, threshold=G.size + 1, max_line_width=160))


class EntryCommand(gdb.Command):
    """One tape entry and where each input came from.

Usage: tg-entry [INDEX]
At a stop in tapegrad_backward_break: the entry at INDEX (default: the break's),
then each input with its label, shape, whether it needs grad, and the entry that
made it (or leaf), so `tg-entry` on those indices walks the tape backwards.
Only entries up to the break's are readable: backward has freed the later ones."""

    def __init__(self):
        super().__init__("tg-entry", gdb.COMMAND_DATA)

    def invoke(self, arg, from_tty):
        entry, _ = _break_frame()
        tape = _Tape(entry)
        arg = arg.strip().lstrip("#")
        if arg and not arg.isdigit():
            raise gdb.GdbError("tapegrad: usage: tg-entry [INDEX]")
        i = int(arg) if arg else tape.index
        e = tape.at(i)
        print(f"#{i} {TapeEntryPrinter(e).to_string()}")
        for j, t in enumerate(_elements(e["inputs"])):
            impl = _impl(t)
            if impl is None:
                continue
            p = tape.producer(impl)
            src = f"<- #{p[0]} {p[1]['op'].string()}" if p else "leaf"
            need = "needs grad" if bool(impl.dereference()["requires_grad"]) else "no grad"
            print(f"  input {j}: '{_label(impl)}' {_shape(impl)} {src}, {need}")


HeadCommand()
EntryCommand()
