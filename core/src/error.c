/*
 * error.c: mgconn_error, the one error shape of every host, and how driver failures map onto it.
 *
 * Ownership: an mgconn_error is the caller's. Its `detail` (labels and reason as BSON) is allocated
 * on demand and released by mgconn_error_cleanup(). The thread-local last error is owned by the
 * thread and replaced by the next failure on that thread.
 */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* The size is part of the ABI: hosts allocate the struct themselves (see mgconn.h). */
#if UINTPTR_MAX == UINT64_MAX
_Static_assert (sizeof (mgconn_error) == MGCONN_ERROR_SIZE, "mgconn_error changed size: an ABI break");
#endif

/* Fixed size, so FFI hosts can allocate it without a C compiler (see mgconn.h). */
_Static_assert (sizeof (mgconn_error) ==
                   16 + MGCONN_ERROR_CODE_NAME_SIZE + MGCONN_ERROR_MESSAGE_SIZE + sizeof (void *) + 8,
                "mgconn_error must keep its size: hosts allocate it themselves");

typedef struct {
   bson_t labels; /* an array */
   bson_t reason; /* {type, servers} or empty */
} mg_error_detail;

static const char *const category_names[] = {
   "None",           "Option",    "ServerSelection", "BufferTimeout",  "NotConnected",
   "ConnectionClosed", "OverwriteModel", "MissingSchema", "Operation", "DuplicateKey",
   "Write",          "Network",   "Authentication",  "DocumentTooLarge", "Type",
   "InvalidArgument", "Cancelled", "Internal", "OutcomeUnknown", "Validation",
   "NotSupported",
};

const char *
mgconn_error_category_name (int32_t category)
{
   if (category < 0 || (size_t) category >= sizeof category_names / sizeof category_names[0]) {
      return "Unknown";
   }
   return category_names[category];
}

void
mgconn_error_init (mgconn_error *e)
{
   if (e) {
      memset (e, 0, sizeof *e);
   }
}

static mg_error_detail *
detail_of (mgconn_error *e)
{
   if (!e->detail) {
      mg_error_detail *d = BSON_ALIGNED_ALLOC0 (mg_error_detail); /* bson_t: 128-byte aligned */
      bson_init (&d->labels);
      bson_init (&d->reason);
      e->detail = d;
   }
   return e->detail;
}

void
mgconn_error_cleanup (mgconn_error *e)
{
   if (!e) {
      return;
   }
   if (e->detail) {
      mg_error_detail *d = e->detail;
      bson_destroy (&d->labels);
      bson_destroy (&d->reason);
      bson_free (d);
   }
   memset (e, 0, sizeof *e);
}

void
mgconn_error_copy (mgconn_error *dst, const mgconn_error *src)
{
   if (!dst || dst == src) {
      return;
   }
   mgconn_error_cleanup (dst);
   if (!src) {
      return;
   }
   memcpy (dst, src, sizeof *dst);
   dst->detail = NULL;
   if (src->detail) {
      const mg_error_detail *s = src->detail;
      mg_error_detail *d = detail_of (dst);
      bson_destroy (&d->labels);
      bson_destroy (&d->reason);
      bson_copy_to (&s->labels, &d->labels);
      bson_copy_to (&s->reason, &d->reason);
   }
}

static const uint8_t empty_bson[5] = {5, 0, 0, 0, 0};

static int
borrowed (const bson_t *b, const uint8_t **data, size_t *len)
{
   if (data) {
      *data = b ? bson_get_data (b) : empty_bson;
   }
   if (len) {
      *len = b ? b->len : sizeof empty_bson;
   }
   return 0;
}

int
mgconn_error_labels (const mgconn_error *e, const uint8_t **data, size_t *len)
{
   const mg_error_detail *d = e ? e->detail : NULL;
   return borrowed (d ? &d->labels : NULL, data, len);
}

int
mgconn_error_reason (const mgconn_error *e, const uint8_t **data, size_t *len)
{
   const mg_error_detail *d = e ? e->detail : NULL;
   return borrowed (d ? &d->reason : NULL, data, len);
}

void
mg_error_set (mgconn_error *e, int32_t category, const char *fmt, ...)
{
   va_list ap;
   if (!e) {
      return;
   }
   e->category = category;
   va_start (ap, fmt);
   vsnprintf (e->message, sizeof e->message, fmt, ap);
   va_end (ap);
   mg_redact_inplace (e->message, sizeof e->message);
}

void
mg_error_set_reason (mgconn_error *e, const bson_t *reason)
{
   mg_error_detail *d = detail_of (e);
   bson_destroy (&d->reason);
   bson_copy_to (reason, &d->reason);
}

static bool
has_label (const bson_t *reply, const char *label)
{
   bson_iter_t it, arr;
   if (reply && bson_iter_init_find (&it, reply, "errorLabels") && BSON_ITER_HOLDS_ARRAY (&it) &&
       bson_iter_recurse (&it, &arr)) {
      while (bson_iter_next (&arr)) {
         if (BSON_ITER_HOLDS_UTF8 (&arr) && strcmp (bson_iter_utf8 (&arr, NULL), label) == 0) {
            return true;
         }
      }
   }
   return false;
}

static int32_t
category_of (const bson_error_t *be)
{
   switch (be->domain) {
   case MONGOC_ERROR_SERVER_SELECTION:
      return MGCONN_ERR_SERVER_SELECTION;
   case MONGOC_ERROR_STREAM:
   case MONGOC_ERROR_PROTOCOL:
      return MGCONN_ERR_NETWORK;
   case MONGOC_ERROR_CLIENT:
      return be->code == MONGOC_ERROR_CLIENT_AUTHENTICATE ? MGCONN_ERR_AUTHENTICATION : MGCONN_ERR_OPERATION;
   case MONGOC_ERROR_SASL:
      return MGCONN_ERR_AUTHENTICATION;
   case MONGOC_ERROR_BSON:
   case MONGOC_ERROR_COMMAND:
      return be->code == MONGOC_ERROR_COMMAND_INVALID_ARG ? MGCONN_ERR_INVALID_ARGUMENT : MGCONN_ERR_OPERATION;
   case MONGOC_ERROR_SERVER:
   case MONGOC_ERROR_WRITE_CONCERN:
   case MONGOC_ERROR_QUERY:
   case MONGOC_ERROR_COLLECTION:
   default:
      switch (be->code) {
      case 11000:
      case 11001:
      case 12582:
         return MGCONN_ERR_DUPLICATE_KEY;
      case 18: /* AuthenticationFailed */
         return MGCONN_ERR_AUTHENTICATION;
      case 10334: /* BSONObjectTooLarge */
         return MGCONN_ERR_DOCUMENT_TOO_LARGE;
      default:
         return be->domain == MONGOC_ERROR_WRITE_CONCERN ? MGCONN_ERR_WRITE : MGCONN_ERR_OPERATION;
      }
   }
}

/* The server's names for its common codes, for errors that libmongoc reports without the reply
 * that carried the name (create_collection, a write error inside an insert's result). */
static const struct {
   int32_t code;
   const char *name;
} code_names[] = {
   {2, "BadValue"},           {9, "FailedToParse"},         {11, "UserNotFound"},
   {13, "Unauthorized"},      {18, "AuthenticationFailed"}, {20, "IllegalOperation"},
   {26, "NamespaceNotFound"}, {27, "IndexNotFound"},        {43, "CursorNotFound"},
   {48, "NamespaceExists"},   {50, "MaxTimeMSExpired"},     {59, "CommandNotFound"},
   {67, "CannotCreateIndex"}, {72, "InvalidOptions"},       {73, "InvalidNamespace"},
   {85, "IndexOptionsConflict"}, {86, "IndexKeySpecsConflict"}, {91, "ShutdownInProgress"},
   {112, "WriteConflict"},    {121, "DocumentValidationFailure"}, {189, "PrimarySteppedDown"},
   {10107, "NotWritablePrimary"}, {10334, "BSONObjectTooLarge"}, {11000, "DuplicateKey"},
   {11600, "InterruptedAtShutdown"}, {13435, "NotPrimaryNoSecondaryOk"}, {13436, "NotPrimaryOrSecondary"},
};

static const char *
known_code_name (int32_t code)
{
   for (size_t i = 0; i < sizeof code_names / sizeof code_names[0]; i++) {
      if (code_names[i].code == code) {
         return code_names[i].name;
      }
   }
   return "";
}

static bool
from_server (uint32_t domain)
{
   return domain == MONGOC_ERROR_SERVER || domain == MONGOC_ERROR_WRITE_CONCERN || domain == MONGOC_ERROR_QUERY ||
          domain == MONGOC_ERROR_COLLECTION || domain == MONGOC_ERROR_COMMAND;
}

void
mg_error_from_driver (mgconn_error *e, const bson_error_t *be, const bson_t *reply)
{
   bson_iter_t it;
   mgconn_error_cleanup (e);
   e->category = category_of (be);
   e->code = (int32_t) be->code;
   e->domain = be->domain;
   bson_strncpy (e->message, be->message, sizeof e->message);
   mg_redact_inplace (e->message, sizeof e->message);
   if (from_server (be->domain)) {
      bson_strncpy (e->code_name, known_code_name (e->code), sizeof e->code_name);
   }
   if (!reply) {
      return;
   }
   if (bson_iter_init_find (&it, reply, "codeName") && BSON_ITER_HOLDS_UTF8 (&it)) {
      bson_strncpy (e->code_name, bson_iter_utf8 (&it, NULL), sizeof e->code_name);
   }
   /* A write error (e.g. a duplicate key inside insertMany) is reported in writeErrors. */
   if (bson_iter_init_find (&it, reply, "writeErrors") && BSON_ITER_HOLDS_ARRAY (&it) &&
       e->category == MGCONN_ERR_OPERATION) {
      e->category = MGCONN_ERR_WRITE;
   }
   if (bson_iter_init_find (&it, reply, "errorLabels") && BSON_ITER_HOLDS_ARRAY (&it)) {
      uint32_t len;
      const uint8_t *data;
      bson_t arr;
      mg_error_detail *d = detail_of (e);
      bson_iter_array (&it, &len, &data);
      if (bson_init_static (&arr, data, len)) {
         bson_destroy (&d->labels);
         bson_copy_to (&arr, &d->labels);
      }
   }
   if (has_label (reply, "NetworkError") && e->category == MGCONN_ERR_OPERATION) {
      e->category = MGCONN_ERR_NETWORK;
   }
}

static _Thread_local mgconn_error last_error;

const mgconn_error *
mgconn_last_error (void)
{
   return &last_error;
}

int
mg_error_raise (const mgconn_error *e, mgconn_error *out)
{
   mgconn_error_copy (&last_error, e);
   if (out) {
      mgconn_error_copy (out, e);
   }
   return -e->category;
}

int
mg_fail (mgconn_error *out, int32_t category, const char *fmt, ...)
{
   mgconn_error e;
   va_list ap;
   int rc;
   mgconn_error_init (&e);
   e.category = category;
   va_start (ap, fmt);
   vsnprintf (e.message, sizeof e.message, fmt, ap);
   va_end (ap);
   mg_redact_inplace (e.message, sizeof e.message);
   rc = mg_error_raise (&e, out);
   mgconn_error_cleanup (&e);
   return rc;
}
