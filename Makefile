# Two entry points on a fresh Debian machine: `make demo` and `make test`.
# Both install what is missing (apt toolchains as root, a .venv with the package), then do their job.
VENV      ?= .venv
PYTHON    ?= python3
BIN       := $(VENV)/bin
STAMP     := $(VENV)/.stamp-installed
# FULL=1 (CI) also runs the tests marked slow: the whole QEMU target matrix. JOBS test processes (pytest-xdist),
# one per core by default; JOBS=1 runs them in this process.
PYTEST_MARKS := $(if $(FULL),-m "",)
JOBS         ?= auto
PYTEST_JOBS  := $(if $(filter 1,$(JOBS)),,-n $(JOBS))

.PHONY: setup demo test bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml scripts/install-system-deps.sh
	scripts/install-system-deps.sh
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,tvm,tflite,onnx,distributed]'
	touch $@

demo: setup
	$(BIN)/dwscodegen generate examples/mbv2_inverted_residual_s8.json -t x86_64 -o out/mbv2_inverted_residual_s8
	$(BIN)/dwscodegen verify examples/mbv2_inverted_residual_s8.json -t cortex-m4
	$(BIN)/dwscodegen verify examples/mbv2_inverted_residual_s8.json -t x86_64
	$(BIN)/dwscodegen verify examples/mbv2_inverted_residual_f32.json -t x86_64

test: setup
	$(BIN)/pytest $(PYTEST_JOBS) $(PYTEST_MARKS) --durations=20

# Benchmarks (not tests): Cortex-M instructions per layer (reference C loop, default, tuned, TVM, CMSIS-NN),
# x86 times per layer against onnxruntime and TVM's LLVM build, and whole models per x86 level against
# TFLite + XNNPACK; results in benchmarks/results/.
bench: setup
	$(BIN)/python benchmarks/cortexm_layers.py
	$(BIN)/python benchmarks/x86_layers.py
	$(BIN)/python benchmarks/x86_models.py --tvm
	$(BIN)/python benchmarks/onnx_requant.py
	$(BIN)/python benchmarks/tvm_zoo.py

clean:
	rm -rf out build .pytest_cache
