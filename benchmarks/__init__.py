"""The throughput benchmark, above the apps rather than inside the library: `python -m benchmarks`. `mlp` (the MLP
variants and their trainers), `gemm` (the machine's GEMM limit), `cnn` (the notMNIST CNN of `apps.notmnist_cnn`),
`tables` (markdown and goals), `bench` (the command). Results: docs/bench.md.
"""
