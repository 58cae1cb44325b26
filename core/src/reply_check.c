/*
 * reply_check.c: a server's reply counts as a success only when mgconn can read its "ok".
 *
 * libmongoc takes a reply it cannot walk (an element of an unknown type, a length that runs past
 * the document) as one without an error, so a corrupt reply to an insert was reported as a
 * successful insert. The driver hands each reply of a succeeded command to the pool's
 * command-monitoring callback, on the thread that ran the command: a worker, inside an operation's
 * exec. There the reply's top level is walked; an operation whose command got a reply without a
 * readable numeric or boolean "ok" fails (mg_reply_check_end), whatever the driver said.
 *
 * The driver hands over an empty reply for the commands whose replies the command-monitoring rules
 * redact (redact.c's list, and a hello that carried speculativeAuthenticate): those are not
 * checked here.
 *
 * State is per thread, armed only around an operation's exec: other commands the driver runs on
 * its own (handshakes, monitoring, endSessions at teardown) leave it untouched.
 */
#include "internal.h"

#include <string.h>

static _Thread_local struct {
   bool armed;
   bool bad;
   char why[192];
} check;

void
mg_reply_check_begin (void)
{
   check.armed = true;
   check.bad = false;
   check.why[0] = '\0';
}

/* Why `reply` is not a readable reply, or NULL when it is one. */
static const char *
unreadable (const bson_t *reply, char *buf, size_t size)
{
   bson_iter_t it;
   bool has_ok = false;
   if (!bson_iter_init (&it, reply)) {
      return "its document's length does not match its bytes";
   }
   while (bson_iter_next (&it)) {
      if (strcmp (bson_iter_key (&it), "ok") == 0) {
         bson_type_t t = bson_iter_type (&it);
         has_ok = t == BSON_TYPE_DOUBLE || t == BSON_TYPE_INT32 || t == BSON_TYPE_INT64 || t == BSON_TYPE_BOOL ||
                  t == BSON_TYPE_DECIMAL128;
      }
   }
   if (it.err_off) {
      snprintf (buf, size, "it is not valid BSON (byte %u of %u)", (unsigned) it.err_off, (unsigned) reply->len);
      return buf;
   }
   return has_ok ? NULL : "it has no \"ok\" field";
}

void
mg_reply_check_on_succeeded (const mongoc_apm_command_succeeded_t *event)
{
   char buf[96];
   const char *why;
   const bson_t *reply = mongoc_apm_command_succeeded_get_reply (event);
   bool if_speculative;
   if (!check.armed || check.bad) {
      return;
   }
   if (bson_empty (reply) &&
       (mg_command_name_is_sensitive (mongoc_apm_command_succeeded_get_command_name (event), &if_speculative) ||
        if_speculative)) {
      return; /* redacted by the driver */
   }
   why = unreadable (reply, buf, sizeof buf);
   if (why) {
      check.bad = true;
      snprintf (check.why, sizeof check.why, "invalid reply from server to %s: %s",
                mongoc_apm_command_succeeded_get_command_name (event), why);
   }
}

bool
mg_reply_check_end (bool ok, mgconn_error *error, bson_t *reply)
{
   bool bad = check.bad;
   check.armed = false;
   check.bad = false;
   if (ok && bad) {
      mg_error_set (error, MGCONN_ERR_NETWORK, "%s", check.why);
      /* as the driver's own unreadable replies are told (buffer.c does not send such an op again) */
      error->domain = MONGOC_ERROR_PROTOCOL;
      error->code = MONGOC_ERROR_PROTOCOL_INVALID_REPLY;
      bson_reinit (reply); /* nothing of what the driver made of it */
      return false;
   }
   return ok;
}
