"""The TVM road's schedule knobs: for each kernel kind, each knob's default, the values `tune` searches,
and what it does. DEFAULTS, SPACE and the documentation below are all derived from KNOBS.

`resolve(kind, where, overrides, kernel, out_channels, in_channels)` merges a caller's overrides into
the op's defaults (`default_params`) and rejects unknown knobs or bad values with a DwsError naming
the op. Hybrid Conv2D (float32 input, int8 filter) takes the pointwise / conv knobs for its
convolution. `vectorize` is not offered: the C lowering neutralises it.
"""
from __future__ import annotations

from dataclasses import dataclass

from ...errors import DwsError


@dataclass(frozen=True)
class Knob:
    default: object
    space: tuple            # values the tuner tries (the first valid combination is not special)
    doc: str
    dtypes: tuple = ()      # the op dtypes it applies to (empty: all); the tuner offers it only there


def searched(kind: str, dtype: str) -> dict[str, list]:
    """The knobs `tune` searches for a `kind` kernel whose op computes in `dtype`, with their values."""
    return {name: values for name, values in SPACE.get(kind, {}).items()
            if not KNOBS[kind][name].dtypes or dtype in KNOBS[kind][name].dtypes}


_TILE_DOC = "{what} accumulated together ({acc} per pixel: every input value loaded once per tile), 1 = a scalar"
_UNROLL_TILE = Knob(True, (True, False), "unroll the loops over the tile (accumulate, requantize, store)")
_UNROLL_KERNEL = Knob(True, (True, False), "unroll the KHxKW window loops (default only up to 25 taps; "
                                           "padding predicates become per-tap constants)")
_SPLIT = Knob(0, (0, 4, 8, 16), "inner split of the element loop, 0 = none")
_UNROLL_SPLIT = Knob(False, (False, True), "unroll the inner loop (needs 2 <= split <= 16; the int8 stages "
                                           "then become arrays of `split` values per outer iteration)")

KNOBS: dict[str, dict[str, Knob]] = {
    "depthwise": dict(
        c_split=Knob(0, (0, 2, 4, 8, 16), "inner channel tile, 0 = no split (whole channel dimension)"),
        order=Knob("hwc", ("hwc", "hcw"), '"hwc": rows, columns, channel tiles; "hcw": channel tiles outside columns'),
        unroll_kernel=_UNROLL_KERNEL),
    "pointwise": dict(
        oc_tile=Knob(4, (1, 2, 4, 8, 16), _TILE_DOC.format(what="output channels", acc="acc[oc_tile]")),
        unroll_tile=_UNROLL_TILE,
        ic_unroll=Knob(4, (1, 2, 4, 8), "unroll factor of the input-channel reduction loop, 1 = none")),
    "conv": dict(
        oc_tile=Knob(4, (1, 2, 4, 8), _TILE_DOC.format(what="output channels", acc="acc[oc_tile]")),
        unroll_tile=_UNROLL_TILE,
        ic_unroll=Knob(1, (1, 2, 4), "unroll factor of the input-channel reduction loop, 1 = none"),
        unroll_kernel=_UNROLL_KERNEL),
    "add": dict(split=_SPLIT, unroll=_UNROLL_SPLIT),
    "elementwise": dict(split=_SPLIT, unroll=_UNROLL_SPLIT),     # Relu, Relu6, Quantize, Dequantize, Reshape
    "binary": dict(split=_SPLIT, unroll=_UNROLL_SPLIT),          # innermost loop; Mul, Maximum, Minimum, PRelu, Add
    "activation": dict(split=_SPLIT, unroll=_UNROLL_SPLIT),      # HardSwish, Logistic, Tanh, LeakyRelu
    "pool": dict(
        c_tile=Knob(4, (1, 2, 4, 8), _TILE_DOC.format(what="channels", acc="acc[c_tile]")),
        unroll_tile=_UNROLL_TILE, unroll_kernel=_UNROLL_KERNEL),
    "mean": dict(
        c_tile=Knob(4, (1, 2, 4, 8), _TILE_DOC.format(what="channels", acc="acc[c_tile]")),
        unroll_tile=_UNROLL_TILE, unroll_kernel=_UNROLL_KERNEL),
    "fully_connected": dict(
        o_tile=Knob(4, (1, 2, 4, 8), _TILE_DOC.format(what="outputs", acc="acc[o_tile]")),
        unroll_tile=_UNROLL_TILE,
        k_unroll=Knob(4, (1, 2, 4, 8), "unroll factor of the depth (K) reduction loop, 1 = none")),
    "softmax": dict(cache_exp=Knob(True, (True, False), "keep a row's exps in a temporary [depth] between the sum "
                                                        "and the output (default when depth <= 32)"),
                    exp_table=Knob(False, (False, True), "int8: the exps of the 256 possible differences to the row "
                                                         "maximum computed once per call into a table the rows read "
                                                         "(default from 128 values: fewer exps than 2 per value)",
                                   dtypes=("int8",))),
    "pad": dict(decompose=Knob(True, (True, False), "fill with the pad value, then copy the input box; false: "
                                                    "one loop nest with an if_then_else per element")),
    "concat": dict(partition=Knob(True, (True, False), "one loop per input; false: one loop with a select "
                                                       "between the inputs per element")),
    "resize": dict(unroll_channels=Knob(False, (False, True), "unroll the channel loop of each output pixel")),
    "transpose_conv": dict(                       # a Conv2D over the stride-dilated input (compute_spatial.py)
        oc_tile=Knob(4, (1, 2, 4, 8), _TILE_DOC.format(what="output channels", acc="acc[oc_tile]")),
        unroll_tile=_UNROLL_TILE,
        ic_unroll=Knob(1, (1, 2, 4), "unroll factor of the input-channel reduction loop, 1 = none"),
        unroll_kernel=_UNROLL_KERNEL),
    "slice": dict(unroll_inner=Knob(False, (False, True), "unroll the innermost output loop (when it has at most "
                                                          "16 iterations)")),
}

# The tensorized kernels (simd.py): "<pointwise|conv|depthwise>_<isa>", isa = dsp | mve | thumb2.
MAX_UNROLLED_COLUMNS = 8
_PIXELS = "output pixels per micro-kernel tile"
_CHANNELS = "output channels per micro-kernel tile (accumulators: pixels x channels)"
_GEMM_ORDER = Knob("pixels", ("pixels", "channels"), '"pixels": pixel tiles outermost, a tile\'s window / widened '
                   'patch built once for all its channel tiles; "channels": channel tiles outermost (rebuilt per tile)')
_UNROLL_WINDOW = Knob(True, (True, False), "unroll the gathering of a tile's receptive fields (default up to "
                                           "128 bytes per tile)")
_DW_ORDER = Knob("hwc", ("hwc", "hcw"), '"hwc": rows, columns, channel groups of a region; "hcw": channel groups '
                 'outside the columns')
# Defaults per ISA as measured on the KWS and example layers (QEMU instructions): unrolling pairs of channel
# tiles pays on DSP with 2-pixel tiles (-1 to -2%), never on MVE (+5 to +13%) or Thumb-2 (0 to +2%); unrolling a
# region's columns pays a little on DSP, costs on MVE and Thumb-2 (+1%).
for _isa, _pixels, _channels, _pairs, _columns in (("dsp", (4, 2), (1, 2, 4), False, True),
                                                   ("mve", (2, 2), (4,), False, False),
                                                   ("thumb2", (2, 2), (2, 4), False, False)):
    _space = (1, 2, 4) if _isa == "dsp" else (1, 2, 3) if _isa == "mve" else (1, 2)
    KNOBS[f"pointwise_{_isa}"] = dict(
        pixels=Knob(_pixels[0], _space, _PIXELS),
        channels=Knob(_channels[-1] if _isa != "dsp" else 2, _channels, _CHANNELS),
        order=_GEMM_ORDER,
        unroll_channels=Knob(_pairs, (True, False), "two channel tiles per iteration of the channel loop, unrolled "
                                                     '(order "pixels", an even number of tiles)'))
    KNOBS[f"conv_{_isa}"] = dict(KNOBS[f"pointwise_{_isa}"], pixels=Knob(_pixels[1], _space, _PIXELS),
                                 unroll_window=_UNROLL_WINDOW)
    if _isa == "dsp":
        KNOBS["conv_dsp"]["unroll_channels"] = Knob(True, (True, False), KNOBS["conv_dsp"]["unroll_channels"].doc)
    KNOBS[f"depthwise_{_isa}"] = dict(order=_DW_ORDER, unroll_columns=Knob(
        _columns, (True, False), f"unroll the column loop of every region up to {MAX_UNROLLED_COLUMNS} columns wide"))
KNOBS["depthwise_thumb2"]["lanes"] = Knob(4, (1, 2, 4), "channels per micro-kernel call (accumulators)")
# The tensorized glue ops (simd_glue.py): table lookups (MVE) and Mul (MVE, DSP).
_CHUNK = Knob(64, (16, 64, 256), "flat values per micro-kernel call (the last call takes the rest); Mul of a "
                                 "per-channel vector: one call per pixel row whatever the chunk")
KNOBS["binary_mve"] = dict(chunk=_CHUNK)
KNOBS["activation_mve"] = dict(chunk=_CHUNK)
KNOBS["binary_dsp"] = dict(chunk=_CHUNK)
KNOBS["add_dsp"] = dict(chunk=_CHUNK)
# FullyConnected with its 4-row dot products tensorized (simd_fc.py)
for _isa in ("dsp", "mve"):
    KNOBS[f"fully_connected_{_isa}"] = dict(unroll_epilogue=Knob(True, (True, False), "unroll the bias, "
                                                                 "requantization and store of a tile's 4 outputs"))
MAX_ACCUMULATORS = {"dsp": 8, "mve": 12, "thumb2": 8}   # pixels x channels that stay in registers
# DSP pointwise layers of a shorter reduction take 2-pixel tiles in unrolled pairs (their widened patches are
# too short to pay for four; -5 to -12% on the examples).
SHORT_DEPTH = 32
MAX_UNROLLED_WINDOW = 128
DEFAULTS = {kind: {name: k.default for name, k in knobs.items()} for kind, knobs in KNOBS.items()}
SPACE = {kind: {name: list(k.space) for name, k in knobs.items()} for kind, knobs in KNOBS.items()}

MAX_TILE = 16           # acc, biased, high [oc_tile] int32: within the 256-byte temporary limit
MAX_UNROLLED_TAPS = 25  # default unroll_kernel only up to a 5x5 window
MAX_UNROLLED_ADD = 16   # 4 int8 stages of 16 int32: 256 B at most, StorageRewrite shares them
MAX_CACHED_EXP = 32     # softmax cache_exp by default up to a row of 32 (128 B of int32/float)
EXP_TABLE_FROM = 128    # softmax exp_table by default from this many values (rows x depth; 256 exps per call)
MAX_UNROLLED_SLICE = 16  # slice unroll_inner only unrolls an innermost loop up to this many copies
TILES = ("oc_tile", "c_tile", "o_tile")
UNROLLS = ("ic_unroll", "k_unroll")


def describe() -> str:
    """The knob table as text (kind, knob, default, searched values, what it does)."""
    lines = []
    for kind, knobs in KNOBS.items():
        for name, k in knobs.items():
            lines.append(f"{kind:<16} {name:<14} default {k.default!r:<6} searched {list(k.space)}: {k.doc}")
    return "\n".join(lines)


def default_params(kind: str, kernel: tuple[int, int] = (1, 1), out_channels: int = 0,
                   in_channels: int = 0, lanes: int = 0) -> dict:
    """DEFAULTS adapted to the op: tiles and unroll factors that divide the channels (no remainder
    predicates), window unrolling only for small windows.  On the examples they execute 10-45% fewer
    instructions than the templates on Cortex-M4 (QEMU counts), for 0.6-1.1 KiB more code.
    lanes: the target's 32-bit vector lanes (0: none). Convolutions then tile their channels by a vector:
    gcc's SLP vectorizer turns the unrolled tile into vector code (x86_64-v3 / -v4: about 20% faster)."""
    params = dict(DEFAULTS[kind])
    if "unroll_kernel" in params:
        params["unroll_kernel"] = kernel[0] * kernel[1] <= MAX_UNROLLED_TAPS
    if lanes and kind == "depthwise" and out_channels % lanes == 0 and out_channels > lanes:
        params["c_split"] = lanes
    for key in TILES:
        if key in params and out_channels:
            vector = (min(lanes, MAX_TILE), lanes // 2) if lanes and kind in ("pointwise", "conv") else ()
            params[key] = next(t for t in vector + (params[key], 3, 2, 1) if out_channels % t == 0)
    for key in UNROLLS:
        if params.get(key, 1) > 1 and in_channels:
            params[key] = next(t for t in (params[key], 2, 1) if in_channels % t == 0)
    if kind == "softmax" and in_channels:
        params["cache_exp"] = in_channels <= MAX_CACHED_EXP
        params["exp_table"] = out_channels >= EXP_TABLE_FROM      # softmax: out_channels = the values of all rows
    depth = kernel[0] * kernel[1] * in_channels
    if kind == "pointwise_dsp" and in_channels and depth < SHORT_DEPTH:
        params.update(pixels=2, unroll_channels=True)
    if "unroll_window" in params:
        params["unroll_window"] = params["pixels"] * depth <= MAX_UNROLLED_WINDOW
    return params


def resolve(kind: str, where: str, overrides: dict | None, kernel=(1, 1), out_channels: int = 0,
            in_channels: int = 0, lanes: int = 0) -> dict:
    params = default_params(kind, kernel, out_channels, in_channels, lanes)
    for key, value in (overrides or {}).items():
        if key not in params:
            raise DwsError(f"{where}: unknown schedule parameter '{key}' for a {kind} kernel; "
                           f"known: {', '.join(sorted(params))}")
        default = params[key]
        if isinstance(default, bool):
            ok = isinstance(value, bool)
        elif isinstance(default, int):
            ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
        else:
            ok = value in KNOBS[kind][key].space
        if not ok:
            expected = ("true/false" if isinstance(default, bool) else "an integer >= 0"
                        if isinstance(default, int) else " | ".join(KNOBS[kind][key].space))
            raise DwsError(f"{where}: schedule parameter {key}={value!r} must be {expected}")
        params[key] = value
    for key in TILES + UNROLLS:
        if key in params and not 1 <= params[key] <= MAX_TILE:
            raise DwsError(f"{where}: schedule parameter {key}={params[key]} must be in [1, {MAX_TILE}]")
    isa = kind.rpartition("_")[2]
    if isa in MAX_ACCUMULATORS and "pixels" in params:
        for key in ("pixels", "channels"):
            if params[key] not in KNOBS[kind][key].space:
                raise DwsError(f"{where}: schedule parameter {key}={params[key]} must be one of "
                               f"{list(KNOBS[kind][key].space)}")
        if params["pixels"] * params["channels"] > MAX_ACCUMULATORS[isa]:
            raise DwsError(f"{where}: pixels x channels = {params['pixels'] * params['channels']} accumulators; "
                           f"at most {MAX_ACCUMULATORS[isa]} stay in {isa} registers")
    if kind == "depthwise_thumb2" and params["lanes"] not in KNOBS[kind]["lanes"].space:
        raise DwsError(f"{where}: schedule parameter lanes={params['lanes']} must be one of "
                       f"{list(KNOBS[kind]['lanes'].space)}")
    if kind in ("add", "elementwise", "binary", "activation") and params["unroll"] and not 2 <= params["split"] <= MAX_UNROLLED_ADD:
        raise DwsError(f"{where}: schedule parameter unroll=true needs 2 <= split <= {MAX_UNROLLED_ADD}, "
                       f"got split={params['split']}")
    return params
