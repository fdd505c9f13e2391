/*
 * cartosync — folding of UTF-8 text, without the locale (internal).
 *
 * Records hold French, Arabic and names in other scripts; searches and
 * comparisons must not depend on the machine's locale, so the few
 * foldings the library needs are written here once.
 */
#ifndef CARTOSYNC_TEXT_H
#define CARTOSYNC_TEXT_H

/*
 * A copy of `s` folded for case-insensitive search: ASCII, Latin-1 (À..Þ
 * to à..þ) and the upper/lower pairs of Latin Extended-A (U+0100..U+017F)
 * to lower case.  Other characters, Arabic among them, have no case and
 * stay as they are; so do bytes that are not UTF-8.  malloc'd, or NULL
 * when out of memory.
 */
char *cs_text_fold(const char *s);

/*
 * A copy of `s` reduced for comparing names: letters of ASCII, Latin-1 and
 * Latin Extended-A to their lower-case ASCII base (é to e, Ç to c, œ to
 * oe, ß to ss); Arabic without its vowel marks and tatweel, alef with
 * hamza or madda as a bare alef; punctuation, symbols and spaces (ASCII,
 * Latin-1, General Punctuation, Arabic comma, semicolon and question mark)
 * to single spaces, none at either end.  Every other character is kept
 * as it is.  The result is never longer than `s`.  malloc'd, or NULL when
 * out of memory.
 *
 *   "Centre d'Hébergement — OUJDA"  ->  "centre d hebergement oujda"
 */
char *cs_text_normalise(const char *s);

#endif
