"""The throughput benchmark, beside the library rather than inside it: `python -m benchmarks` (alias
`python -m apps.bench`). `mlp` (the MLP variants and their trainers), `gemm` (the machine's GEMM limit), `cnn` (the
notMNIST CNN of `apps.notmnist_cnn`), `tables` (markdown and goals), `bench` (the command). Results: docs/bench.md.
"""
