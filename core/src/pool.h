/*
 * pool.h: a connection's client pool and its worker jobs (pool.c). Every function here is called
 * with conn->lock held (a root connection: children have no pool).
 */
#ifndef MGCONN_POOL_H
#define MGCONN_POOL_H

#include "connection.h"

/* Sets the connection's job functions (at creation). */
void mg_pool_init (mgconn_connection *conn);
/* Queues the open job that makes a pool for the current open cycle. No pool exists. */
void mg_pool_open_locked (mgconn_connection *conn);
/* Stops using the pool: it is destroyed once no operation runs on it. */
void mg_pool_close_locked (mgconn_connection *conn);
/* The pump's last step: a closing pool that nothing runs on any more goes away (and a close that
 * waited for that finishes). */
void mg_pool_teardown_if_idle_locked (mgconn_connection *conn);
/* With credentials: one pooled client authenticates (a ping) before the first `connected`; its
 * outcome goes to mg_conn_up_locked or mg_conn_open_failed_locked. Queued once. */
void mg_pool_check_credentials_locked (mgconn_connection *conn);
/* minPoolSize: after each connect, that many pooled clients get a live socket. Queued once. */
void mg_pool_warm_locked (mgconn_connection *conn);

#endif
