/* lginit.c: the init helper program (sandbox/_lginit).
 *
 * launch.c's init forks the agent, then execs this to reap and forward signals for
 * the rest of the session: a process of a few hundred KiB instead of a copy of
 * landgate's Python heap (~6 MB of private pages once landgate's heap moves on).
 * The code is launch.c's own (reap, forward_signal, send_msg); only main() is here.
 */
#define LG_INIT_MAIN 1
#include "launch.c"
