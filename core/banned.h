/* Force-included in every translation unit: unsafe string functions fail
 * to compile (STYLE.md rule 24, HAProxy's bug.h idea). */
#ifndef RINGMAIL_BANNED_H
#define RINGMAIL_BANNED_H

#ifndef __cplusplus
#include <stdio.h>
#include <string.h>
#undef strcpy
#define strcpy(...) ringmail_banned_strcpy
#undef strcat
#define strcat(...) ringmail_banned_strcat
#undef sprintf
#define sprintf(...) ringmail_banned_sprintf
#undef strtok
#define strtok(...) ringmail_banned_strtok
#undef gets
#define gets(...) ringmail_banned_gets
#endif

#endif
