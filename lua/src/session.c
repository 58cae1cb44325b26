/*
 * session.c: mgconn.Session, a thin type over libmgconn's mgconn_session (sessions and
 * transactions); mgconn.lua gives it Mongoose's methods.
 *
 * Lifetime: the box keeps its connection alive (uservalue) and frees the session in __gc, or at
 * once with :free() (Mongoose's endSession()).
 */
#include "lmgconn.h"

/* conn:startSession(options) -> session */
int
lm_conn_start_session (lua_State *L)
{
   mgconn_connection *c = lm_check (L, 1, LM_CONNECTION);
   bson_t opts;
   const uint8_t *od;
   size_t ol;
   mgconn_session *s = NULL;
   int rc;
   lm_opt_doc (L, 2, &opts, "options", &od, &ol);
   rc = mgconn_connection_start_session (&s, c, od, ol);
   bson_destroy (&opts);
   if (rc != 0) {
      return lm_raise_last (L);
   }
   lm_new_box (L, s, LM_SESSION, 1);
   return 1;
}

static int
session_id (lua_State *L)
{
   lua_pushinteger (L, (lua_Integer) mgconn_session_id (lm_check (L, 1, LM_SESSION)));
   return 1;
}

static int
session_in_transaction (lua_State *L)
{
   lua_pushboolean (L, mgconn_session_in_transaction (lm_check (L, 1, LM_SESSION)));
   return 1;
}

static int
session_start_transaction (lua_State *L)
{
   mgconn_session *s = lm_check (L, 1, LM_SESSION);
   bson_t opts;
   const uint8_t *od;
   size_t ol;
   int rc;
   lm_opt_doc (L, 2, &opts, "options", &od, &ol);
   rc = mgconn_session_start_transaction (s, od, ol);
   bson_destroy (&opts);
   if (rc != 0) {
      return lm_raise_last (L);
   }
   return 0;
}

static int
finish (lua_State *L, int (*end) (mgconn_op **, mgconn_session *, mgconn_op_cb, void *))
{
   mgconn_session *s = lm_check (L, 1, LM_SESSION);
   void *ud;
   mgconn_op **op = lm_new_op (L, 2, &ud);
   lm_started (L, end (op, s, lm_op_done, ud));
   return 1;
}

/* session:commit(done) -> op */
static int
session_commit (lua_State *L)
{
   return finish (L, mgconn_session_commit_transaction);
}

/* session:abort(done) -> op */
static int
session_abort (lua_State *L)
{
   return finish (L, mgconn_session_abort_transaction);
}

static int
session_gc (lua_State *L)
{
   lm_box *b = luaL_checkudata (L, 1, LM_SESSION);
   if (b->handle) {
      mgconn_session_free (b->handle);
      b->handle = NULL;
   }
   return 0;
}

void
lm_open_session (lua_State *L)
{
   static const luaL_Reg methods[] = {{"id", session_id},         {"inTransaction", session_in_transaction},
                                      {"startTransaction", session_start_transaction},
                                      {"commit", session_commit}, {"abort", session_abort},
                                      {"free", session_gc},       {NULL, NULL}};
   lm_new_type (L, LM_SESSION, methods, session_gc);
}
