// lock.h -- a run directory has one writer.
//
// The process training in DIR holds a POSIX record lock (fcntl F_SETLK) on DIR/lock, a small
// file that names it ("pid host"). A second process is refused, whatever its flags, with a
// message naming the holder's pid. The kernel drops a record lock when its process ends, however
// it ends -- kill -9 included -- so a lock never outlives its holder: a run killed outright
// leaves its lock file behind, and the next run simply takes it over. A run that ends in any
// other way removes the file.
//
// One lock per process (a run trains in one directory); the functions are for the main thread.
#ifndef GPT_LOCK_H
#define GPT_LOCK_H

#include <stdbool.h>
#include <stddef.h>

// Takes the lock of dir if dir exists (true, doing nothing, when it does not: a new directory
// is taken by run_lock_create). False with a one-line reason when another process holds it.
bool run_lock_existing(const char *dir, char *err, size_t errlen);

// Creates dir (and its missing parents) if needed and takes its lock. If this process
// created the directory, releasing the lock removes it again while it is empty -- so a run
// that fails before writing anything leaves nothing behind, whatever way it exits.
bool run_lock_create(const char *dir, char *err, size_t errlen);

// Only asks: false, with the same message, when another process holds dir's lock; true when
// none does (or dir has no lock file). Takes nothing, creates nothing.
bool run_lock_probe(const char *dir, char *err, size_t errlen);

// Releases the lock and removes the lock file (and the directories run_lock_create made, if
// they are empty). Also run at exit, so that die() releases too.
void run_lock_release(void);

#endif
