// lock.c -- one writer per run directory (see lock.h).
#include "train/lock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/common.h"

static struct {
    int fd;              // the locked file; -1 when none is held
    char *path;          // DIR/lock
    char *dir;           // the directory
    size_t created_len;  // run_lock_create made dir's components from this prefix length on (0: none)
    bool registered;     // the atexit handler is in place
} held = {.fd = -1};

static void release_at_exit(void) { run_lock_release(); }

// Removes dir and its parents down to the one whose path is dir's first created_len bytes,
// deepest first, as far as they are empty (rmdir never removes anything else).
static void remove_created(const char *dir, size_t created_len) {
    if (!created_len) return;
    char *copy = xstrdup(dir);
    (void)rmdir(copy);
    for (size_t j = strlen(copy); j-- > created_len;)
        if (copy[j] == '/') {
            copy[j] = 0;
            (void)rmdir(copy);
        }
    free(copy);
}

static char *lock_path(const char *dir) {
    size_t n = strlen(dir) + 8;
    char *p = xmalloc(n);
    snprintf(p, n, "%s/lock", dir);
    return p;
}

// Who holds the lock on fd's file: the kernel's answer (F_GETLK) for a local holder, else what
// the holder wrote into the file.
static void describe_holder(int fd, char *who, size_t n) {
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    long pid = 0;
    if (fcntl(fd, F_GETLK, &fl) == 0 && fl.l_type != F_UNLCK && fl.l_pid > 0) pid = fl.l_pid;
    char text[320] = "", host[256] = "", me[256] = "";
    ssize_t r = pread(fd, text, sizeof text - 1, 0);
    long file_pid = 0;
    if (r > 0) {
        text[r] = 0;
        if (sscanf(text, "%ld %255s", &file_pid, host) < 1) file_pid = 0;
    }
    if (!pid) pid = file_pid;
    (void)gethostname(me, sizeof me - 1);
    bool elsewhere = host[0] && strcmp(host, me) != 0 && file_pid == pid;
    if (pid > 0 && elsewhere) snprintf(who, n, "pid %ld on %s", pid, host);
    else if (pid > 0) snprintf(who, n, "pid %ld", pid);
    else snprintf(who, n, "a process whose pid the lock does not tell");
}

static void in_use(const char *dir, int fd, char *err, size_t errlen) {
    char who[400];
    describe_holder(fd, who, sizeof who);
    set_error(err, errlen,
              "'%s' is in use: another gpt train (%s) is training in it, and a run directory has one writer; wait "
              "for that run to end, stop it, or choose another --out",
              dir, who);
}

bool run_lock_probe(const char *dir, char *err, size_t errlen) {
    if (held.fd >= 0 && strcmp(held.dir, dir) == 0) return true;
    char *path = lock_path(dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    free(path);
    if (fd < 0) return true;
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    bool free_ = fcntl(fd, F_GETLK, &fl) != 0 || fl.l_type == F_UNLCK;
    if (!free_) in_use(dir, fd, err, errlen);
    close(fd);
    return free_;
}

static bool acquire(const char *dir, char *err, size_t errlen) {
    if (held.fd >= 0) {
        if (strcmp(held.dir, dir) == 0) return true;
        set_error(err, errlen, "internal: a run lock is already held on '%s'", held.dir);
        return false;
    }
    char *path = lock_path(dir);
    // A holder that ends removes the file: if it did so between our open and our lock, the
    // lock we got is on a file no longer at the path, and we try again.
    for (int attempt = 0; attempt < 100; attempt++) {
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0) {
            set_error(err, errlen, "cannot create '%s': %s", path, strerror(errno));
            free(path);
            return false;
        }
        struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
        if (fcntl(fd, F_SETLK, &fl) != 0) {
            int e = errno;
            if (e == EACCES || e == EAGAIN) {
                in_use(dir, fd, err, errlen);
            } else {
                set_error(err, errlen, "cannot lock '%s': %s", path, strerror(e));
            }
            close(fd);
            free(path);
            return false;
        }
        struct stat a, b;
        if (fstat(fd, &a) != 0 || stat(path, &b) != 0 || a.st_ino != b.st_ino || a.st_dev != b.st_dev) {
            close(fd);
            continue;
        }
        char me[256] = "", line[320];
        (void)gethostname(me, sizeof me - 1);
        int n = snprintf(line, sizeof line, "%ld %s\n", (long)getpid(), me[0] ? me : "-");
        // The name is a courtesy for the message of a refused run (which asks the kernel
        // first); the lock is what counts, so a failure to write it is no failure.
        bool named = ftruncate(fd, 0) == 0 && pwrite(fd, line, (size_t)n, 0) == n;
        (void)named;
        held.fd = fd;
        held.path = path;
        held.dir = xstrdup(dir);
        if (!held.registered) {
            atexit(release_at_exit);
            held.registered = true;
        }
        return true;
    }
    set_error(err, errlen, "cannot lock '%s': its lock file keeps being replaced", path);
    free(path);
    return false;
}

bool run_lock_existing(const char *dir, char *err, size_t errlen) {
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) return true;
    return acquire(dir, err, errlen);
}

bool run_lock_create(const char *dir, char *err, size_t errlen) {
    size_t created = 0;
    struct stat st;
    if (stat(dir, &st) != 0) {
        // Like mkdir -p, remembering where the new part of the path begins.
        char *copy = xstrdup(dir);
        size_t len = strlen(copy);
        for (size_t i = 1; i <= len; i++) {
            if (copy[i] != '/' && copy[i] != 0) continue;
            if (copy[i - 1] == '/') continue;
            char c = copy[i];
            copy[i] = 0;
            if (mkdir(copy, 0755) == 0) {
                if (!created) created = i;
            } else if (errno != EEXIST) {
                set_error(err, errlen, "cannot create directory '%s': %s", copy, strerror(errno));
                free(copy);
                remove_created(dir, created);
                return false;
            }
            copy[i] = c;
        }
        free(copy);
    } else if (!S_ISDIR(st.st_mode)) {
        set_error(err, errlen, "'%s' exists and is not a directory", dir);
        return false;
    }
    if (!acquire(dir, err, errlen)) {
        remove_created(dir, created);
        return false;
    }
    if (created) held.created_len = created;
    return true;
}

void run_lock_release(void) {
    if (held.fd >= 0) {
        // Remove the file only while it is still ours: if someone removed it and a new run
        // took a new one, that one is not ours to remove.
        struct stat a, b;
        if (fstat(held.fd, &a) == 0 && stat(held.path, &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev)
            (void)unlink(held.path);
        close(held.fd);
        held.fd = -1;
    }
    // The directories run_lock_create made: gone again if the run wrote nothing into them.
    if (held.dir) remove_created(held.dir, held.created_len);
    free(held.path);
    free(held.dir);
    held.path = held.dir = NULL;
    held.created_len = 0;
}
