{
  "targets": [
    {
      "target_name": "xs_execve",
      "sources": ["native/execve.c"],
      "defines": ["NAPI_VERSION=8"],
      "cflags": ["-Wall", "-Wextra"]
    }
  ]
}
