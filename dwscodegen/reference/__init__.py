"""NumPy reference of every op (float32, and int8 bit-exact with TFLite's reference kernels).

Array-level kernels live one family per module (pool, fully_connected, softmax, shape_ops,
elementwise; conv and add in ops.py); graph.py runs a whole Graph with them.
"""
