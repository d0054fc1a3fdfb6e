/*
 * posix_spawn for the jobs runner. Node's child_process forks the whole agent before exec:
 * the page tables of a big process are copied and torn down again for every program, and a
 * fork can fail with ENOMEM when the agent's memory is large next to what is free. glibc's
 * posix_spawn uses clone(CLONE_VM | CLONE_VFORK): nothing is copied, the cost does not grow
 * with the agent, and exec errors come back synchronously.
 *
 * spawn(path, argv, envp, cwd) -> [pid, stdoutFd, stderrFd]; stdin is /dev/null; the child
 *   leads a new session (and so its own process group), with every signal at its default and
 *   none blocked (Node ignores SIGPIPE; a child must not inherit that). Throws an Error with
 *   `code` (ENOENT, EACCES…) when the program cannot start.
 * reap(pid) -> null while it runs, else [exitCode or null, signal number or 0]; the caller
 *   calls it on SIGCHLD (libuv reaps only the children it started itself).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <node_api.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void free_strings(char **v) {
  if (!v) return;
  for (char **p = v; *p; p++) free(*p);
  free(v);
}

/* A JS array of strings as a NULL-terminated C array; NULL on a bad argument. */
static char **strings(napi_env env, napi_value array) {
  uint32_t n;
  if (napi_get_array_length(env, array, &n) != napi_ok) return NULL;
  char **v = calloc(n + 1, sizeof(char *));
  if (!v) return NULL;
  for (uint32_t i = 0; i < n; i++) {
    napi_value item;
    size_t len;
    if (napi_get_element(env, array, i, &item) != napi_ok || napi_get_value_string_utf8(env, item, NULL, 0, &len) != napi_ok ||
        !(v[i] = malloc(len + 1)) || napi_get_value_string_utf8(env, item, v[i], len + 1, &len) != napi_ok) {
      free_strings(v);
      return NULL;
    }
  }
  return v;
}

static char *string(napi_env env, napi_value value) {
  size_t len;
  if (napi_get_value_string_utf8(env, value, NULL, 0, &len) != napi_ok) return NULL;
  char *s = malloc(len + 1);
  if (s && napi_get_value_string_utf8(env, value, s, len + 1, &len) != napi_ok) {
    free(s);
    return NULL;
  }
  return s;
}

static napi_value throw_errno(napi_env env, int err, const char *what) {
  char text[512];
  napi_value message, code, error;
  snprintf(text, sizeof text, "%s: %s", what, strerror(err));
  const char *name = err == ENOENT ? "ENOENT" : err == EACCES ? "EACCES" : err == ENOEXEC ? "ENOEXEC" : err == ENOMEM ? "ENOMEM" : err == E2BIG ? "E2BIG" : "EIO";
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &message);
  napi_create_error(env, NULL, message, &error);
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code);
  napi_set_named_property(env, error, "code", code);
  napi_throw(env, error);
  return NULL;
}

static napi_value Spawn(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value args[4];
  napi_get_cb_info(env, info, &argc, args, NULL, NULL);
  if (argc != 4) {
    napi_throw_type_error(env, NULL, "spawn(path, argv, envp, cwd)");
    return NULL;
  }
  char *path = string(env, args[0]), *cwd = string(env, args[3]);
  char **argv = strings(env, args[1]), **envp = strings(env, args[2]);
  napi_value result = NULL;
  int out[2] = {-1, -1}, err[2] = {-1, -1};
  if (!path || !cwd || !argv || !envp) {
    napi_throw_type_error(env, NULL, "spawn(path: string, argv: string[], envp: string[], cwd: string)");
    goto done;
  }
  if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) {
    throw_errno(env, errno, "pipe2");
    goto done;
  }
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  posix_spawn_file_actions_adddup2(&actions, err[1], 2);
  if (cwd[0]) posix_spawn_file_actions_addchdir_np(&actions, cwd);
  posix_spawnattr_init(&attr);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  pid_t pid;
  int failed = posix_spawn(&pid, path, &actions, &attr, argv, envp);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (failed) {
    throw_errno(env, failed, path);
    goto done;
  }
  napi_value item;
  napi_create_array_with_length(env, 3, &result);
  napi_create_int32(env, pid, &item);
  napi_set_element(env, result, 0, item);
  napi_create_int32(env, out[0], &item);
  napi_set_element(env, result, 1, item);
  napi_create_int32(env, err[0], &item);
  napi_set_element(env, result, 2, item);
  out[0] = err[0] = -1; /* the caller owns the read ends now */
done:
  for (int i = 0; i < 2; i++) {
    if (out[i] >= 0) close(out[i]);
    if (err[i] >= 0) close(err[i]);
  }
  free(path);
  free(cwd);
  free_strings(argv);
  free_strings(envp);
  return result;
}

static napi_value Reap(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value arg, result, item, null;
  int32_t pid;
  napi_get_cb_info(env, info, &argc, &arg, NULL, NULL);
  napi_get_null(env, &null);
  if (argc != 1 || napi_get_value_int32(env, arg, &pid) != napi_ok) {
    napi_throw_type_error(env, NULL, "reap(pid: number)");
    return NULL;
  }
  int status;
  pid_t r;
  do r = waitpid(pid, &status, WNOHANG);
  while (r < 0 && errno == EINTR);
  if (r == 0) return null;
  if (r < 0) return throw_errno(env, errno, "waitpid");
  napi_create_array_with_length(env, 2, &result);
  if (WIFEXITED(status)) napi_create_int32(env, WEXITSTATUS(status), &item);
  else item = null;
  napi_set_element(env, result, 0, item);
  napi_create_int32(env, WIFSIGNALED(status) ? WTERMSIG(status) : 0, &item);
  napi_set_element(env, result, 1, item);
  return result;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "spawn", NAPI_AUTO_LENGTH, Spawn, NULL, &fn);
  napi_set_named_property(env, exports, "spawn", fn);
  napi_create_function(env, "reap", NAPI_AUTO_LENGTH, Reap, NULL, &fn);
  napi_set_named_property(env, exports, "reap", fn);
  return exports;
}
