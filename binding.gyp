{
  "targets": [
    {
      "target_name": "mope_native",
      "sources": [
        "native/addon.c",
        "native/gemm.c",
        "native/gemm_dnnl.c",
        "native/kernels_fwd.c",
        "native/kernels_bwd.c",
        "native/optim.c",
        "native/threads.c"
      ],
      "include_dirs": ["native", "/usr/include/x86_64-linux-gnu/openblas-pthread", "/usr/include/openblas"],
      "cflags": ["-O3", "-march=native", "-fopenmp", "-std=c11", "-fno-math-errno", "-Wall", "-Wno-unused-parameter"],
      "cflags!": ["-O2"],
      "ldflags": ["-fopenmp"],
      "libraries": ["-lopenblas", "-ldnnl", "-lm"]
    }
  ]
}
