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
        "native/image.c",
        "native/threads.c"
      ],
      "include_dirs": [
        "native",
        "/usr/include/x86_64-linux-gnu/openblas-pthread",
        "/usr/include/openblas"
      ],
      "cflags": [
        "-O3",
        "-march=native",
        "-fopenmp",
        "-std=c11",
        "-fno-math-errno",
        "-ffp-contract=fast",
        "-Wall",
        "-Wno-unused-parameter"
      ],
      "cflags!": [
        "-O2"
      ],
      "ldflags": [
        "-fopenmp"
      ],
      "libraries": [
        "-lopenblas",
        "-ldnnl",
        "-lm"
      ]
    }
  ],
  "variables": {
    "has_mpi": "<!(sh -c 'command -v mpicc >/dev/null 2>&1 && echo 1 || echo 0')"
  },
  "conditions": [
    [
      "has_mpi==1",
      {
        "targets": [
          {
            "target_name": "mope_mpi",
            "sources": [
              "native/mpi.c"
            ],
            "include_dirs": [
              "<!@(sh -c 'mpicc --showme:incdirs')"
            ],
            "cflags": [
              "-O2",
              "-std=c11",
              "-Wall",
              "-Wno-unused-parameter"
            ],
            "libraries": [
              "<!@(sh -c 'mpicc --showme:link')"
            ]
          }
        ]
      }
    ]
  ]
}