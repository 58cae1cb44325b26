/*
 * pluralize.c: Mongoose's pluraliser, which turns a model name into its collection name
 * ("User" -> "users", "Person" -> "people"). Same uncountables, same rules in the same order, the
 * first matching rule applied to every match (the rules are JavaScript /gi regular expressions),
 * so that a collection made by Mongoose and one made by mgconn have the same name.
 *
 * The rules are POSIX extended regular expressions, compiled once for the process.
 */
#include "connection.h"

#include <ctype.h>
#include <regex.h>
#include <string.h>

static const char *const uncountables[] = {
   "advice", "energy", "excretion", "digestion", "cooperation", "health", "justice", "labour", "machinery",
   "equipment", "information", "pollution", "sewage", "paper", "money", "species", "series", "rain", "rice",
   "fish", "sheep", "moose", "deer", "news", "expertise", "status", "media",
};

/* Mongoose's rules. `\N` in a replacement is group N. Rule 13, `(?:([^f])fe|([lr])f)$` in
 * JavaScript, is written with a capturing outer group (POSIX has no (?:), so its groups move up by
 * one. */
static const struct {
   const char *pattern;
   const char *replacement;
} rules[] = {
   {"human$", "humans"},
   {"(m|wom)an$", "\\1en"},
   {"(pe)rson$", "\\1ople"},
   {"(child)$", "\\1ren"},
   {"^(ox)$", "\\1en"},
   {"(ax|test)is$", "\\1es"},
   {"(octop|cact|foc|fung|nucle)us$", "\\1i"},
   {"(alias|status|virus)$", "\\1es"},
   {"(bu)s$", "\\1ses"},
   {"(buffal|tomat|potat)o$", "\\1oes"},
   {"([ti])um$", "\\1a"},
   {"sis$", "ses"},
   {"(([^f])fe|([lr])f)$", "\\2\\3ves"},
   {"(hive)$", "\\1s"},
   {"([^aeiouy]|qu)y$", "\\1ies"},
   {"(x|ch|ss|sh)$", "\\1es"},
   {"(matr|vert|ind)ix|ex$", "\\1ices"},
   {"([m|l])ouse$", "\\1ice"},
   {"(kn|w|l)ife$", "\\1ives"},
   {"(quiz)$", "\\1zes"},
   {"^goose$", "geese"},
   {"s$", "s"},
   {"([^a-z])$", "\\1"},
   {"$", "s"},
};
#define N_RULES (sizeof rules / sizeof rules[0])

static regex_t compiled[N_RULES];
static pthread_once_t compiled_once = PTHREAD_ONCE_INIT;

static void
compile_rules (void)
{
   for (size_t i = 0; i < N_RULES; i++) {
      regcomp (&compiled[i], rules[i].pattern, REG_EXTENDED | REG_ICASE);
   }
}

static void
append_replacement (mg_strbuf_t *out, const char *subject, const regmatch_t *m, const char *replacement)
{
   for (const char *r = replacement; *r; r++) {
      if (r[0] == '\\' && isdigit ((unsigned char) r[1])) {
         int g = r[1] - '0';
         if (m[g].rm_so >= 0) {
            mg_strbuf_append_printf (out, "%.*s", (int) (m[g].rm_eo - m[g].rm_so), subject + m[g].rm_so);
         }
         r++;
      } else {
         mg_strbuf_append_c (out, *r);
      }
   }
}

/* JavaScript's str.replace(/rule/gi, replacement): every non-overlapping match, left to right. */
static char *
replace_all (const regex_t *re, const char *str, const char *replacement)
{
   mg_strbuf_t *out = mg_strbuf_new (NULL);
   regmatch_t m[10];
   size_t pos = 0, len = strlen (str);
   int flags = 0;
   while (pos <= len && regexec (re, str + pos, 10, m, flags) == 0) {
      /* regexec's offsets are relative to str + pos: make them absolute for the groups. */
      for (int g = 0; g < 10; g++) {
         if (m[g].rm_so >= 0) {
            m[g].rm_so += (regoff_t) pos;
            m[g].rm_eo += (regoff_t) pos;
         }
      }
      mg_strbuf_append_printf (out, "%.*s", (int) (m[0].rm_so - (regoff_t) pos), str + pos);
      append_replacement (out, str, m, replacement);
      if (m[0].rm_eo == m[0].rm_so) { /* an empty match (the `$` rule): copy one char and go on */
         if ((size_t) m[0].rm_eo < len) {
            mg_strbuf_append_c (out, str[m[0].rm_eo]);
         }
         pos = (size_t) m[0].rm_eo + 1;
      } else {
         pos = (size_t) m[0].rm_eo;
      }
      flags = REG_NOTBOL;
   }
   if (pos < len) {
      mg_strbuf_append (out, str + pos);
   }
   return mg_strbuf_free (out, false);
}

static char *
pluralize (const char *name)
{
   char *lower = bson_strdup (name);
   pthread_once (&compiled_once, compile_rules);
   if (strcmp (name, "system.profile") == 0 || strcmp (name, "system.indexes") == 0) {
      return lower;
   }
   for (char *p = lower; *p; p++) {
      *p = (char) tolower ((unsigned char) *p);
   }
   for (size_t i = 0; i < sizeof uncountables / sizeof uncountables[0]; i++) {
      if (strcmp (lower, uncountables[i]) == 0) {
         return lower;
      }
   }
   for (size_t i = 0; i < N_RULES; i++) {
      regmatch_t m;
      if (regexec (&compiled[i], lower, 1, &m, 0) == 0) {
         char *result = replace_all (&compiled[i], lower, rules[i].replacement);
         bson_free (lower);
         return result;
      }
   }
   return lower;
}

char *
mg_pluralize (const char *name)
{
   return pluralize (name);
}

size_t
mgconn_pluralize (const char *name, char *buf, size_t size)
{
   char *p;
   size_t len;
   if (!name) {
      return 0;
   }
   p = pluralize (name);
   len = strlen (p);
   if (buf && size > 0) {
      bson_strncpy (buf, p, size);
   }
   bson_free (p);
   return len;
}
