"""One layer as a one-node ONNX model, timed with onnxruntime (1 thread)."""
from __future__ import annotations

import numpy as np
from dwscodegen.ir import Graph, Op
from dwscodegen.ops import activation_bounds
from dwscodegen.qparams import is_hybrid

from .common import NotAvailable, bias_of, check_close, dequantized_filter, estimate_ns, runs_for, timed_batches


def _onnx_activation(nodes, inits, name: str, op: Op, helper, numpy_helper) -> str:
    low, high = activation_bounds(op)
    if low is None and high is None:
        return name
    out = name + "_act"
    if low == 0.0 and high is None:
        nodes.append(helper.make_node("Relu", [name], [out]))
        return out
    args = [name]
    for label, v in (("lo", low), ("hi", high)):
        if v is None:
            args.append("")
        else:
            inits.append(numpy_helper.from_array(np.array(v, np.float32), f"clip_{label}"))
            args.append(f"clip_{label}")
    nodes.append(helper.make_node("Clip", args, [out]))
    return out


def onnx_layer(lg: Graph, op: Op) -> tuple[bytes, dict, callable, str]:
    """(serialized one-node model, feeds, output -> NHWC layout, note)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    x_t = lg.tensor(op.inputs[0])
    y_t = lg.tensor(op.outputs[0])
    nodes, inits, note = [], [], ""
    to_nhwc = lambda y: y  # noqa: E731
    a = op.attrs
    inputs_nchw = False
    if op.type in ("Conv2D", "DepthwiseConv2D"):
        w = dequantized_filter(lg, op)
        if is_hybrid(lg, op):
            note = ("hybrid conv (int8 filter): onnxruntime runs a float Conv on the dequantized filter, "
                    "not TFLite's dynamic-range int8 computation")
        oc = y_t.shape[3]
        if op.type == "Conv2D":
            wk = w.transpose(0, 3, 1, 2)                                 # [OC][C][KH][KW]
            group = 1
        else:
            kh, kw = w.shape[1], w.shape[2]
            wk = w.reshape(kh, kw, oc).transpose(2, 0, 1)[:, None]       # [OC][1][KH][KW]
            group = x_t.shape[3]
        top, bottom, left, right = a.pad
        inits += [numpy_helper.from_array(np.ascontiguousarray(wk), "W"),
                  numpy_helper.from_array(bias_of(lg, op, oc), "B")]
        nodes.append(helper.make_node("Conv", ["x", "W", "B"], ["conv"], group=group,
                                      kernel_shape=list(wk.shape[2:]), strides=list(a.stride),
                                      dilations=list(a.dilation), pads=[top, left, bottom, right]))
        last = _onnx_activation(nodes, inits, "conv", op, helper, numpy_helper)
        inputs_nchw = True
    elif op.type in ("AveragePool2D", "MaxPool2D"):
        top, bottom, left, right = a.pad
        kwargs = dict(kernel_shape=list(a.filter), strides=list(a.stride), pads=[top, left, bottom, right])
        if op.type == "AveragePool2D":
            kwargs["count_include_pad"] = 0           # TFLite averages over the valid taps only
        nodes.append(helper.make_node("AveragePool" if op.type == "AveragePool2D" else "MaxPool",
                                      ["x"], ["pool"], **kwargs))
        last = _onnx_activation(nodes, inits, "pool", op, helper, numpy_helper)
        inputs_nchw = True
    elif op.type == "FullyConnected":
        w = lg.tensor(op.inputs[1])
        if w.dtype != "float32":
            raise NotAvailable("int8-weight FullyConnected is not built by this benchmark")
        inits += [numpy_helper.from_array(np.asarray(w.data, np.float32), "W"),
                  numpy_helper.from_array(bias_of(lg, op, w.shape[0]), "B")]
        nodes.append(helper.make_node("Gemm", ["x", "W", "B"], ["fc"], transB=1))
        last = _onnx_activation(nodes, inits, "fc", op, helper, numpy_helper)
    elif op.type == "Softmax":
        src = "x"
        if a.beta != 1.0:
            inits.append(numpy_helper.from_array(np.array(a.beta, np.float32), "beta"))
            nodes.append(helper.make_node("Mul", ["x", "beta"], ["scaled"]))
            src = "scaled"
        nodes.append(helper.make_node("Softmax", [src], ["softmax"], axis=-1))
        last = "softmax"
    elif op.type == "Reshape":
        inits.append(numpy_helper.from_array(np.array(y_t.shape, np.int64), "shape"))
        nodes.append(helper.make_node("Reshape", ["x", "shape"], ["reshaped"]))
        last = "reshaped"
    elif op.type == "Add":
        nodes.append(helper.make_node("Add", ["x", "x2"], ["sum"]))
        last = _onnx_activation(nodes, inits, "sum", op, helper, numpy_helper)
    elif op.type == "Mean":
        nodes.append(helper.make_node("ReduceMean", ["x"], ["mean"], axes=[1, 2], keepdims=int(a.keep_dims)))
        last = "mean"
    else:
        raise NotAvailable(f"{op.type} is not built as an ONNX model by this benchmark")
    assert nodes[-1].output[0] == last
    nodes[-1].output[0] = "y"            # the last node (the op or its activation) is the graph output

    feeds_nhwc = {}
    graph_inputs = []
    x_shape = list(x_t.shape)
    if op.type == "FullyConnected":
        k = lg.tensor(op.inputs[1]).shape[1]
        x_shape = [x_t.size // k, k]
    if inputs_nchw:
        n, h, w_, c = x_t.shape
        x_shape = [n, c, h, w_]
        out_shape = [y_t.shape[0], y_t.shape[3], y_t.shape[1], y_t.shape[2]]
        to_nhwc = lambda y: y.transpose(0, 2, 3, 1)  # noqa: E731
    else:
        out_shape = list(y_t.shape) if op.type != "FullyConnected" else [x_shape[0], y_t.size // x_shape[0]]
    graph_inputs.append(helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape))
    feeds_nhwc["x"] = (lg.inputs[0], x_shape)
    if op.type == "Add":
        graph_inputs.append(helper.make_tensor_value_info("x2", TensorProto.FLOAT, list(lg.tensor(op.inputs[1]).shape)))
        feeds_nhwc["x2"] = (lg.inputs[1] if len(lg.inputs) > 1 else lg.inputs[0], list(lg.tensor(op.inputs[1]).shape))
    graph = helper.make_graph(nodes, f"layer_{op.type}", graph_inputs,
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="x86_layers")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString(), dict(feeds_nhwc=feeds_nhwc, nchw=inputs_nchw), to_nhwc, note


class OnnxRuntime:
    def __init__(self, lg: Graph, op: Op, inputs: dict, reference: np.ndarray, args):
        import onnxruntime as ort
        model, layout, to_nhwc, note = onnx_layer(lg, op)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
        feeds = {}
        for onnx_name, (name, shape) in layout["feeds_nhwc"].items():
            value = inputs[name]
            if layout["nchw"]:
                value = value.transpose(0, 3, 1, 2)
            feeds[onnx_name] = np.ascontiguousarray(value.reshape(shape), np.float32)
        self.feeds = feeds
        got = to_nhwc(self.session.run(["y"], feeds)[0]).reshape(reference.shape)
        ok, err = check_close(got, reference, 5e-2 if note else 1e-4)
        if not ok:
            raise NotAvailable(f"output differs from the NumPy reference (max abs error {err:.3g})")
        run, feeds_ = self.session.run, self.feeds
        self.call = lambda: run(["y"], feeds_)
        self.runs = runs_for(estimate_ns(self.call), args.batch_ms, args.repeats)
        self.info = dict(runs_per_batch=self.runs, max_abs_error=err, note=note,
                         check=f"ok (max abs error {err:.3g} vs the NumPy reference"
                               + (", which quantizes the input as TFLite's hybrid kernel does)" if note else ")"))

    def sample(self) -> float:
        return timed_batches(self.call, self.runs)
