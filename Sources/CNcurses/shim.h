#ifndef CNCURSES_SHIM_H
#define CNCURSES_SHIM_H
#include <ncurses.h>
#include <term.h>

/* Swift does not import function-like macros nor, safely, ncurses's mutable globals: these read them. */
static inline WINDOW *tn_stdscr(void) { return stdscr; }
static inline FILE *tn_stdout(void) { return stdout; }
static inline FILE *tn_stdin(void) { return stdin; }
static inline int tn_lines(void) { return LINES; }
static inline int tn_cols(void) { return COLS; }
static inline int tn_attr_bold(void) { return (int)A_BOLD; }
static inline int tn_attr_reverse(void) { return (int)A_REVERSE; }
static inline int tn_attr_dim(void) { return (int)A_DIM; }
static inline int tn_attr_pair(short pair) { return (int)COLOR_PAIR(pair); }
/* Whether terminfo knows $TERM, checked before anything is loaded (then forgotten: newterm sets it up). */
static inline int tn_terminal_known(void) {
    int error = 0;
    if (setupterm(NULL, 1, &error) != OK) return 0;
    del_curterm(cur_term);
    return 1;
}
#endif
