/*
 * cartosync — what other lib/ files that use libgit2 need from the
 * repository layer.  Internal: not installed, not part of the contract.
 */
#ifndef CARTOSYNC_REPO_INTERNAL_H
#define CARTOSYNC_REPO_INTERNAL_H

#include <git2.h>

#include "cartosync/repo.h"

/*
 * Initialise libgit2 once per process with the repository layer's options
 * (fsync, caches).  Every function that opens a repository does it; a
 * caller that uses libgit2 before any repository exists calls this first.
 */
void cs_repo_git_setup(void);

/* The libgit2 repository behind `repo`, borrowed: valid until
 * cs_repo_free(), and not to be used by two threads at once. */
git_repository *cs_repo_git(cs_repo *repo);

#endif
