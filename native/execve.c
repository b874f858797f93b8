/*
 * xs_execve — re-exec the current process image while keeping chosen fds open.
 *
 * Node marks every descriptor it opens FD_CLOEXEC, so a plain execve(2) would
 * close the daemon's listening socket and client connections. This addon
 * clears FD_CLOEXEC on the descriptors to keep, calls execve(2) and, if the
 * call fails, puts the flags back and throws so the caller can keep serving.
 *
 * JS API (all synchronous, all throw an Error with code/errno/syscall on failure):
 *   getCloexec(fd)                        -> boolean
 *   clearCloexec(fds)                     -> number[]  previous F_GETFD flags
 *   setCloexec(fds, flags)                -> undefined (flags: from clearCloexec)
 *   execve(path, argv, env, keepFds)      -> never returns on success
 *     argv is the complete vector including argv[0];
 *     env is either { NAME: value } or [ "NAME=value", ... ].
 *   tryLock(fd)                           -> boolean: flock(fd, LOCK_EX|LOCK_NB)
 *     taken (true) or held by another open file description (false); the
 *     lock lives as long as the open file description, across execve(2) too.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include <node_api.h>
#include <uv.h>

/* Bail out of a napi_callback with NULL if a N-API call failed (an exception
 * is then usually already pending). */
#define NAPI_OK(call)                                                      \
  do {                                                                     \
    if ((call) != napi_ok) goto fail;                                      \
  } while (0)

/* ---- errors ------------------------------------------------------------- */

/* Throws Error("<CODE>: <message>, <syscall> '<path>'") with .code ("ENOENT"),
 * .errno (negative, like Node's own fs errors), .syscall and .path. */
static napi_value throw_errno(napi_env env, int err, const char *syscall,
                              const char *path) {
  char name[64], desc[256], msg[512];
  napi_value code, message, error, v;

  /* libuv's spelling, so messages read like Node's own fs/net errors. */
  uv_err_name_r(-err, name, sizeof name);
  uv_strerror_r(-err, desc, sizeof desc);
  if (path)
    snprintf(msg, sizeof msg, "%s: %s, %s '%s'", name, desc, syscall, path);
  else
    snprintf(msg, sizeof msg, "%s: %s, %s", name, desc, syscall);

  if (napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code) != napi_ok ||
      napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &message) != napi_ok ||
      napi_create_error(env, code, message, &error) != napi_ok)
    return NULL;
  if (napi_create_int32(env, -err, &v) == napi_ok)
    napi_set_named_property(env, error, "errno", v);
  if (napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &v) == napi_ok)
    napi_set_named_property(env, error, "syscall", v);
  if (path && napi_create_string_utf8(env, path, NAPI_AUTO_LENGTH, &v) == napi_ok)
    napi_set_named_property(env, error, "path", v);
  napi_throw(env, error);
  return NULL;
}

static napi_value throw_type(napi_env env, const char *msg) {
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
  return NULL;
}

/* ---- argument conversion ------------------------------------------------ */

/* The call's one argument, a descriptor; false (with a TypeError thrown) if it is not one. */
static bool fd_argument(napi_env env, napi_callback_info info, int *fd) {
  size_t argc = 1;
  napi_value argv[1];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return false;
  if (argc < 1 || napi_get_value_int32(env, argv[0], fd) != napi_ok || *fd < 0) {
    throw_type(env, "fd must be a non-negative integer");
    return false;
  }
  return true;
}

/* Returns a malloc'd NUL-terminated copy of a JS string, or NULL. */
static char *get_string(napi_env env, napi_value value) {
  size_t len;
  char *s;
  if (napi_get_value_string_utf8(env, value, NULL, 0, &len) != napi_ok) return NULL;
  if ((s = malloc(len + 1)) == NULL) return NULL;
  if (napi_get_value_string_utf8(env, value, s, len + 1, &len) != napi_ok) {
    free(s);
    return NULL;
  }
  return s;
}

/* Reads a JS array of integers into a malloc'd int array; *n gets its length.
 * Returns 0 on success, -1 (with a pending TypeError) otherwise. */
static int get_fds(napi_env env, napi_value array, int **out, uint32_t *n) {
  bool is_array;
  *out = NULL;
  *n = 0;
  if (napi_is_array(env, array, &is_array) != napi_ok || !is_array ||
      napi_get_array_length(env, array, n) != napi_ok) {
    throw_type(env, "expected an array of file descriptors");
    return -1;
  }
  if ((*out = calloc(*n ? *n : 1, sizeof **out)) == NULL) {
    throw_errno(env, ENOMEM, "calloc", NULL);
    return -1;
  }
  for (uint32_t i = 0; i < *n; i++) {
    napi_value v;
    if (napi_get_element(env, array, i, &v) != napi_ok ||
        napi_get_value_int32(env, v, &(*out)[i]) != napi_ok || (*out)[i] < 0) {
      free(*out);
      *out = NULL;
      throw_type(env, "file descriptors must be non-negative integers");
      return -1;
    }
  }
  return 0;
}

/* A NULL-terminated vector of malloc'd strings, as execve(2) wants. */
typedef struct {
  char **v;
  uint32_t n;
} strvec;

static void strvec_free(strvec *sv) {
  if (!sv->v) return;
  for (uint32_t i = 0; i < sv->n; i++) free(sv->v[i]);
  free(sv->v);
  sv->v = NULL;
}

/* Reads a JS array of strings into sv. Returns 0 or -1 (exception pending). */
static int get_strvec(napi_env env, napi_value array, strvec *sv) {
  uint32_t len;
  bool is_array;
  if (napi_is_array(env, array, &is_array) != napi_ok || !is_array ||
      napi_get_array_length(env, array, &len) != napi_ok) {
    throw_type(env, "expected an array of strings");
    return -1;
  }
  if ((sv->v = calloc(len + 1, sizeof *sv->v)) == NULL) {
    throw_errno(env, ENOMEM, "calloc", NULL);
    return -1;
  }
  for (sv->n = 0; sv->n < len; sv->n++) {
    napi_value v;
    if (napi_get_element(env, array, sv->n, &v) != napi_ok ||
        (sv->v[sv->n] = get_string(env, v)) == NULL) {
      throw_type(env, "expected an array of strings");
      return -1;
    }
  }
  return 0;
}

/* Reads { NAME: value } (own enumerable string keys; undefined values are
 * skipped, others converted with String()) into a "NAME=value" vector. */
static int get_envvec(napi_env env, napi_value object, strvec *sv) {
  napi_value keys;
  uint32_t len;
  if (napi_get_all_property_names(env, object, napi_key_own_only,
                                  napi_key_enumerable | napi_key_skip_symbols,
                                  napi_key_numbers_to_strings, &keys) != napi_ok ||
      napi_get_array_length(env, keys, &len) != napi_ok) {
    throw_type(env, "expected env to be an object or an array of strings");
    return -1;
  }
  if ((sv->v = calloc(len + 1, sizeof *sv->v)) == NULL) {
    throw_errno(env, ENOMEM, "calloc", NULL);
    return -1;
  }
  for (uint32_t i = 0; i < len; i++) {
    napi_value key, value, str;
    napi_valuetype type;
    char *k, *v, *kv = NULL;
    if (napi_get_element(env, keys, i, &key) != napi_ok ||
        napi_get_property(env, object, key, &value) != napi_ok ||
        napi_typeof(env, value, &type) != napi_ok)
      return -1;
    if (type == napi_undefined) continue;
    if (napi_coerce_to_string(env, value, &str) != napi_ok) return -1;
    k = get_string(env, key);
    v = get_string(env, str);
    if (k && v && (kv = malloc(strlen(k) + strlen(v) + 2)) != NULL)
      sprintf(kv, "%s=%s", k, v);
    free(k);
    free(v);
    if (kv == NULL) {
      throw_errno(env, ENOMEM, "malloc", NULL);
      return -1;
    }
    sv->v[sv->n++] = kv;
  }
  return 0;
}

/* ---- FD_CLOEXEC handling ------------------------------------------------ */

static void restore_flags(const int *fds, uint32_t n, const int *saved) {
  for (uint32_t i = 0; i < n; i++) fcntl(fds[i], F_SETFD, saved[i]);
}

/* Clears FD_CLOEXEC on fds[0..n), saving the previous F_GETFD flags.
 * All-or-nothing: on failure, already cleared flags are restored and the
 * errno value is returned; 0 on success. */
static int clear_cloexec(const int *fds, uint32_t n, int *saved) {
  for (uint32_t i = 0; i < n; i++) {
    int flags = fcntl(fds[i], F_GETFD);
    if (flags < 0 || fcntl(fds[i], F_SETFD, flags & ~FD_CLOEXEC) < 0) {
      int err = errno;
      restore_flags(fds, i, saved);
      return err;
    }
    saved[i] = flags;
  }
  return 0;
}

/* ---- exported functions ------------------------------------------------- */

static napi_value GetCloexec(napi_env env, napi_callback_info info) {
  napi_value result;
  int fd, flags;
  if (!fd_argument(env, info, &fd)) return NULL;
  if ((flags = fcntl(fd, F_GETFD)) < 0) return throw_errno(env, errno, "fcntl", NULL);
  NAPI_OK(napi_get_boolean(env, (flags & FD_CLOEXEC) != 0, &result));
  return result;
fail:
  return NULL;
}

static napi_value ClearCloexec(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result = NULL, v;
  int *fds = NULL, *saved = NULL, err;
  uint32_t n;
  NAPI_OK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1) return throw_type(env, "expected an array of file descriptors");
  if (get_fds(env, argv[0], &fds, &n) < 0) goto fail;
  if ((saved = calloc(n ? n : 1, sizeof *saved)) == NULL) {
    throw_errno(env, ENOMEM, "calloc", NULL);
    goto fail;
  }
  if ((err = clear_cloexec(fds, n, saved)) != 0) {
    throw_errno(env, err, "fcntl", NULL);
    goto fail;
  }
  NAPI_OK(napi_create_array_with_length(env, n, &result));
  for (uint32_t i = 0; i < n; i++) {
    NAPI_OK(napi_create_int32(env, saved[i], &v));
    NAPI_OK(napi_set_element(env, result, i, v));
  }
fail:
  free(fds);
  free(saved);
  return result;
}

static napi_value SetCloexec(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int *fds = NULL, *flags = NULL;
  uint32_t n, nflags;
  NAPI_OK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2) return throw_type(env, "expected (fds, flags)");
  if (get_fds(env, argv[0], &fds, &n) < 0 || get_fds(env, argv[1], &flags, &nflags) < 0)
    goto fail;
  if (n != nflags) {
    throw_type(env, "fds and flags must have the same length");
    goto fail;
  }
  for (uint32_t i = 0; i < n; i++) {
    if (fcntl(fds[i], F_SETFD, flags[i]) < 0) {
      throw_errno(env, errno, "fcntl", NULL);
      goto fail;
    }
  }
fail:
  free(fds);
  free(flags);
  return NULL;
}

static napi_value Execve(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  bool env_is_array;
  char *path = NULL;
  strvec args = {0}, envp = {0};
  int *fds = NULL, *saved = NULL, err;
  uint32_t n;

  NAPI_OK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 4) return throw_type(env, "expected (path, argv, env, keepFds)");
  if ((path = get_string(env, argv[0])) == NULL) {
    throw_type(env, "path must be a string");
    goto fail;
  }
  if (get_strvec(env, argv[1], &args) < 0) goto fail;
  NAPI_OK(napi_is_array(env, argv[2], &env_is_array));
  if ((env_is_array ? get_strvec(env, argv[2], &envp) : get_envvec(env, argv[2], &envp)) < 0)
    goto fail;
  if (get_fds(env, argv[3], &fds, &n) < 0) goto fail;
  if ((saved = calloc(n ? n : 1, sizeof *saved)) == NULL) {
    throw_errno(env, ENOMEM, "calloc", NULL);
    goto fail;
  }

  if ((err = clear_cloexec(fds, n, saved)) != 0) {
    throw_errno(env, err, "fcntl", NULL);
    goto fail;
  }
  execve(path, args.v, envp.v);
  /* Still here: the exec failed and this image carries on. */
  err = errno;
  restore_flags(fds, n, saved);
  throw_errno(env, err, "execve", path);

fail:
  free(path);
  strvec_free(&args);
  strvec_free(&envp);
  free(fds);
  free(saved);
  return NULL;
}

static napi_value TryLock(napi_env env, napi_callback_info info) {
  napi_value result;
  int fd, r;
  if (!fd_argument(env, info, &fd)) return NULL;
  do r = flock(fd, LOCK_EX | LOCK_NB);
  while (r < 0 && errno == EINTR);
  if (r < 0 && errno != EWOULDBLOCK) return throw_errno(env, errno, "flock", NULL);
  NAPI_OK(napi_get_boolean(env, r == 0, &result));
  return result;
fail:
  return NULL;
}

NAPI_MODULE_INIT() {
  napi_property_descriptor props[] = {
      {"getCloexec", NULL, GetCloexec, NULL, NULL, NULL, napi_enumerable, NULL},
      {"clearCloexec", NULL, ClearCloexec, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setCloexec", NULL, SetCloexec, NULL, NULL, NULL, napi_enumerable, NULL},
      {"execve", NULL, Execve, NULL, NULL, NULL, napi_enumerable, NULL},
      {"tryLock", NULL, TryLock, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof *props, props) != napi_ok)
    return NULL;
  return exports;
}
