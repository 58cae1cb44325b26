/*
 * codec.c: Python values <-> BSON, in C, without going through JSON.
 *
 *   dict / Mapping (order kept)  <-> document        list, tuple        <-> array
 *   str                          <-> string          bytes              <-> binary (subtype 0)
 *   int (by range)               <-> int32 / int64   Int64              <-> int64
 *   float                        <-> double          bool, None         <-> bool, null
 *   datetime (naive = UTC)       <-> date (UTC, aware on the way back)
 *   uuid.UUID                    <-> binary subtype 4
 *   ObjectId, Decimal128, Binary, Regex, Timestamp, MinKey, MaxKey (mgconn.types) <-> their BSON types
 *
 * A value that cannot be encoded fails the whole conversion with an exception naming the key path
 * ("doc.items[3].owner"), so the operation is never started and nothing is sent. Nesting deeper than
 * MAX_DEPTH (which is also how a cycle shows) is refused the same way.
 */
#include "ext.h"

#include <datetime.h> /* its PyDateTimeAPI global is not used: the capsule lives in module state */
#include <string.h>

#define MAX_DEPTH 100
#define PATH_SIZE 512

/* The key path is kept as a stack of frames (a key or an index) and formatted only when an error
 * needs it: formatting it for every key would cost more than encoding the value. */
typedef struct {
   const char *key; /* NULL: an array index */
   Py_ssize_t len_or_index;
} path_frame;

typedef struct {
   ext_state *st;
   const char *root;
   path_frame frames[MAX_DEPTH + 2];
   int nframes;
   int depth;
   char path[PATH_SIZE];
} encoder;

static void
path_push_key (encoder *e, const char *key, size_t klen)
{
   if (e->nframes < MAX_DEPTH + 2) {
      e->frames[e->nframes].key = key;
      e->frames[e->nframes].len_or_index = (Py_ssize_t) klen;
   }
   e->nframes++;
}

static void
path_push_index (encoder *e, Py_ssize_t i)
{
   if (e->nframes < MAX_DEPTH + 2) {
      e->frames[e->nframes].key = NULL;
      e->frames[e->nframes].len_or_index = i;
   }
   e->nframes++;
}

static void
path_pop (encoder *e)
{
   e->nframes--;
}

static const char *
path_text (encoder *e)
{
   size_t len = (size_t) snprintf (e->path, sizeof e->path, "%s", e->root);
   for (int i = 0; i < e->nframes && i < MAX_DEPTH + 2 && len < sizeof e->path; i++) {
      const path_frame *f = &e->frames[i];
      int n = f->key ? snprintf (e->path + len, sizeof e->path - len, ".%.*s", (int) f->len_or_index, f->key)
                     : snprintf (e->path + len, sizeof e->path - len, "[%zd]", f->len_or_index);
      len = n > 0 ? len + (size_t) n : len;
   }
   return e->path;
}

static int
fail_at (encoder *e, PyObject *exc_type, const char *what, PyObject *value)
{
   PyErr_Format (exc_type, "%s at %s%s%s", what, path_text (e), value ? ": " : "",
                 value ? Py_TYPE (value)->tp_name : "");
   return -1;
}

static int encode_mapping (encoder *e, PyObject *obj, bson_t *out);
static int encode_sequence (encoder *e, PyObject *obj, bson_t *out);

static int
is_instance (PyObject *v, PyObject *cls)
{
   return cls && PyObject_IsInstance (v, cls) == 1;
}

static int
attr_bytes (PyObject *v, PyObject *name, Py_ssize_t want, char **data, Py_ssize_t *len, PyObject **holder)
{
   *holder = PyObject_GetAttr (v, name);
   if (!*holder || !PyBytes_Check (*holder) || PyBytes_AsStringAndSize (*holder, data, len) < 0 ||
       (want >= 0 && *len != want)) {
      Py_XDECREF (*holder);
      *holder = NULL;
      PyErr_Clear ();
      return -1;
   }
   return 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil). */
static int64_t
days_from_civil (int64_t y, unsigned m, unsigned d)
{
   y -= m <= 2;
   const int64_t era = (y >= 0 ? y : y - 399) / 400;
   const unsigned yoe = (unsigned) (y - era * 400);
   const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
   const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
   return era * 146097 + (int64_t) doe - 719468;
}

static void
civil_from_days (int64_t z, int *y, int *m, int *d)
{
   z += 719468;
   const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
   const unsigned doe = (unsigned) (z - era * 146097);
   const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
   const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
   const unsigned mp = (5 * doy + 2) / 153;
   *d = (int) (doy - (153 * mp + 2) / 5 + 1);
   *m = (int) (mp < 10 ? mp + 3 : mp - 9);
   *y = (int) (yoe + era * 400 + (*m <= 2));
}

/* A datetime from its fields (naive ones are UTC); its tzinfo's utcoffset() only when it has one
 * other than UTC. */
static int
encode_datetime_fast (encoder *e, bson_t *b, const char *key, int klen, PyObject *v)
{
   PyObject *tz = PyDateTime_DATE_GET_TZINFO (v);
   int64_t offset_ms = 0;
   int64_t ms = days_from_civil (PyDateTime_GET_YEAR (v), (unsigned) PyDateTime_GET_MONTH (v),
                                 (unsigned) PyDateTime_GET_DAY (v)) * 86400000LL +
                PyDateTime_DATE_GET_HOUR (v) * 3600000LL + PyDateTime_DATE_GET_MINUTE (v) * 60000LL +
                PyDateTime_DATE_GET_SECOND (v) * 1000LL + PyDateTime_DATE_GET_MICROSECOND (v) / 1000;
   if (tz != Py_None && tz != e->st->utc) {
      PyObject *off = PyObject_CallMethod (v, "utcoffset", NULL);
      if (!off) {
         return -1;
      }
      if (off != Py_None) {
         offset_ms = PyDateTime_DELTA_GET_DAYS (off) * 86400000LL + PyDateTime_DELTA_GET_SECONDS (off) * 1000LL +
                     PyDateTime_DELTA_GET_MICROSECONDS (off) / 1000;
      }
      Py_DECREF (off);
   }
   bson_append_date_time (b, key, klen, ms - offset_ms);
   return 0;
}

static int
encode_datetime (encoder *e, bson_t *b, const char *key, int klen, PyObject *v)
{
   ext_state *st = e->st;
   PyObject *offset = PyObject_CallMethod (v, "utcoffset", NULL);
   PyObject *aware = NULL, *delta = NULL, *days = NULL, *secs = NULL, *us = NULL, *epoch;
   int rc = -1;
   if (!offset) {
      return -1;
   }
   if (offset == Py_None) { /* naive: taken as UTC, as PyMongo does */
      PyObject *kw = Py_BuildValue ("{s:O}", "tzinfo", st->utc);
      PyObject *args = PyTuple_New (0);
      PyObject *replace = PyObject_GetAttrString (v, "replace");
      aware = replace ? PyObject_Call (replace, args, kw) : NULL;
      Py_XDECREF (replace);
      Py_DECREF (args);
      Py_DECREF (kw);
   } else {
      Py_INCREF (v);
      aware = v;
   }
   Py_DECREF (offset);
   epoch = PyObject_CallFunction (st->datetime_datetime, "iiiiiiiO", 1970, 1, 1, 0, 0, 0, 0, st->utc);
   if (aware && epoch && (delta = PyNumber_Subtract (aware, epoch)) && (days = PyObject_GetAttrString (delta, "days")) &&
       (secs = PyObject_GetAttrString (delta, "seconds")) && (us = PyObject_GetAttrString (delta, "microseconds"))) {
      int64_t ms = PyLong_AsLongLong (days) * 86400000LL + PyLong_AsLongLong (secs) * 1000LL +
                   PyLong_AsLongLong (us) / 1000LL;
      if (!PyErr_Occurred ()) {
         bson_append_date_time (b, key, klen, ms);
         rc = 0;
      }
   }
   Py_XDECREF (aware);
   Py_XDECREF (epoch);
   Py_XDECREF (delta);
   Py_XDECREF (days);
   Py_XDECREF (secs);
   Py_XDECREF (us);
   return rc;
}

/* The mgconn.types values. Returns 1 when handled, 0 when `v` is none of them, -1 on error. */
static int
encode_typed (encoder *e, bson_t *b, const char *key, int klen, PyObject *v)
{
   ext_state *st = e->st;
   PyObject *h = NULL;
   char *data;
   Py_ssize_t len;
   PyDateTime_CAPI *capi = st->datetime_capi;
   PyObject *kind = NULL;
   if (capi && PyObject_TypeCheck (v, capi->DateTimeType)) {
      return encode_datetime_fast (e, b, key, klen, v) < 0 ? -1 : 1;
   }
   /* Which of mgconn's types: its exact type first, then (a subclass) isinstance in the order below.
    * Trying isinstance first made every miss look up __class__ on the value: a MaxKey went through
    * seven of them, a third of encoding the "full" document (perf). */
   {
      PyObject *const kinds[] = {st->ObjectId, st->Decimal128, st->Binary,   st->Regex,
                                 st->Timestamp, st->MinKey,    st->MaxKey,   st->uuid_UUID};
      const size_t nkinds = sizeof kinds / sizeof kinds[0];
      for (size_t i = 0; i < nkinds && !kind; i++) {
         kind = kinds[i] && (PyObject *) Py_TYPE (v) == kinds[i] ? kinds[i] : NULL;
      }
      for (size_t i = 0; i < nkinds && !kind; i++) {
         kind = is_instance (v, kinds[i]) ? kinds[i] : NULL;
      }
   }
   if (kind == NULL) {
      if (!is_instance (v, st->datetime_datetime)) {
         return 0;
      }
      if (encode_datetime (e, b, key, klen, v) < 0) {
         return PyErr_Occurred () ? -1 : fail_at (e, PyExc_ValueError, "a datetime out of range", NULL);
      }
      return 1;
   }
   if (kind == st->ObjectId) {
      bson_oid_t oid;
      if (attr_bytes (v, st->attr_names[EXT_ATTR_BINARY], 12, &data, &len, &h) < 0) {
         return fail_at (e, PyExc_ValueError, "an ObjectId without its 12 bytes", NULL);
      }
      bson_oid_init_from_data (&oid, (const uint8_t *) data);
      bson_append_oid (b, key, klen, &oid);
   } else if (kind == st->Decimal128) {
      bson_decimal128_t d;
      if (attr_bytes (v, st->attr_names[EXT_ATTR_BID], 16, &data, &len, &h) < 0) {
         return fail_at (e, PyExc_ValueError, "a Decimal128 without its 16 bytes", NULL);
      }
      memcpy (&d.low, data, 8);
      memcpy (&d.high, data + 8, 8);
      d.low = BSON_UINT64_FROM_LE (d.low);
      d.high = BSON_UINT64_FROM_LE (d.high);
      bson_append_decimal128 (b, key, klen, &d);
   } else if (kind == st->Binary) {
      PyObject *sub = PyObject_GetAttr (v, st->attr_names[EXT_ATTR_SUBTYPE]);
      long subtype = sub ? PyLong_AsLong (sub) : -1;
      Py_XDECREF (sub);
      if (subtype < 0 || subtype > 255 || attr_bytes (v, st->attr_names[EXT_ATTR_DATA], -1, &data, &len, &h) < 0) {
         PyErr_Clear ();
         return fail_at (e, PyExc_ValueError, "a Binary needs bytes data and a subtype 0..255", NULL);
      }
      bson_append_binary (b, key, klen, (bson_subtype_t) subtype, (const uint8_t *) data, (uint32_t) len);
   } else if (kind == st->Regex) {
      PyObject *pattern = PyObject_GetAttr (v, st->attr_names[EXT_ATTR_PATTERN]),
               *flags = PyObject_GetAttr (v, st->attr_names[EXT_ATTR_FLAGS]);
      const char *p = pattern && PyUnicode_Check (pattern) ? PyUnicode_AsUTF8 (pattern) : NULL;
      const char *f = flags && PyUnicode_Check (flags) ? PyUnicode_AsUTF8 (flags) : "";
      if (p) {
         bson_append_regex (b, key, klen, p, f ? f : "");
      }
      Py_XDECREF (pattern);
      Py_XDECREF (flags);
      if (!p) {
         PyErr_Clear ();
         return fail_at (e, PyExc_ValueError, "a Regex needs a str pattern", NULL);
      }
   } else if (kind == st->Timestamp) {
      PyObject *t = PyObject_GetAttr (v, st->attr_names[EXT_ATTR_TIME]),
               *i = PyObject_GetAttr (v, st->attr_names[EXT_ATTR_INC]);
      unsigned long tv = t ? PyLong_AsUnsignedLong (t) : 0, iv = i ? PyLong_AsUnsignedLong (i) : 0;
      Py_XDECREF (t);
      Py_XDECREF (i);
      if (PyErr_Occurred ()) {
         PyErr_Clear ();
         return fail_at (e, PyExc_ValueError, "a Timestamp needs unsigned 32-bit time and inc", NULL);
      }
      bson_append_timestamp (b, key, klen, (uint32_t) tv, (uint32_t) iv);
   } else if (kind == st->MinKey) {
      bson_append_minkey (b, key, klen);
   } else if (kind == st->MaxKey) {
      bson_append_maxkey (b, key, klen);
   } else if (kind == st->uuid_UUID) {
      if (attr_bytes (v, st->attr_names[EXT_ATTR_BYTES], 16, &data, &len, &h) < 0) {
         return fail_at (e, PyExc_ValueError, "a UUID without its 16 bytes", NULL);
      }
      bson_append_binary (b, key, klen, BSON_SUBTYPE_UUID, (const uint8_t *) data, 16);
   }
   Py_XDECREF (h);
   return 1;
}

/* A str's UTF-8: an ASCII str's own characters are its UTF-8, read inline (the common case of keys
 * and values); any other str through CPython, which caches its UTF-8 form. */
static inline const char *
str_utf8 (PyObject *s, Py_ssize_t *len)
{
   if (PyUnicode_IS_COMPACT_ASCII (s)) {
      *len = PyUnicode_GET_LENGTH (s);
      return (const char *) PyUnicode_DATA (s);
   }
   return PyUnicode_AsUTF8AndSize (s, len);
}

static int
encode_value (encoder *e, bson_t *b, const char *key, int klen, PyObject *v)
{
   int r;
   if (v == Py_None) {
      bson_append_null (b, key, klen);
   } else if (PyBool_Check (v)) {
      bson_append_bool (b, key, klen, v == Py_True);
   } else if (PyUnicode_Check (v)) {
      Py_ssize_t len;
      const char *s = str_utf8 (v, &len);
      if (!s) {
         PyErr_Clear ();
         return fail_at (e, PyExc_ValueError, "a str that is not valid UTF-8 (lone surrogates)", NULL);
      }
      bson_append_utf8 (b, key, klen, s, (int) len);
   } else if (PyLong_Check (v)) {
      int overflow = 0;
      long long n = PyLong_AsLongLongAndOverflow (v, &overflow);
      if (overflow) {
         return fail_at (e, PyExc_OverflowError, "an int that does not fit in 64 bits (BSON's largest integer)",
                         NULL);
      }
      if (n == -1 && PyErr_Occurred ()) {
         return -1;
      }
      if (n >= INT32_MIN && n <= INT32_MAX && (PyLong_CheckExact (v) || !is_instance (v, e->st->Int64))) {
         bson_append_int32 (b, key, klen, (int32_t) n);
      } else {
         bson_append_int64 (b, key, klen, (int64_t) n);
      }
   } else if (PyFloat_Check (v)) {
      bson_append_double (b, key, klen, PyFloat_AS_DOUBLE (v));
   } else if (PyDict_Check (v) || (!PyList_Check (v) && !PyTuple_Check (v) && !PyUnicode_Check (v) &&
                                   !PyBytes_Check (v) && PyMapping_Check (v) && PyObject_HasAttrString (v, "keys"))) {
      bson_t child;
      bson_append_document_begin (b, key, klen, &child);
      r = encode_mapping (e, v, &child);
      bson_append_document_end (b, &child);
      return r;
   } else if (PyList_Check (v) || PyTuple_Check (v)) {
      bson_t child;
      bson_append_array_unsafe_begin (b, key, klen, &child);
      r = encode_sequence (e, v, &child);
      bson_append_array_end (b, &child);
      return r;
   } else if (PyBytes_Check (v) || PyByteArray_Check (v)) {
      const char *data = PyBytes_Check (v) ? PyBytes_AS_STRING (v) : PyByteArray_AS_STRING (v);
      Py_ssize_t len = PyBytes_Check (v) ? PyBytes_GET_SIZE (v) : PyByteArray_GET_SIZE (v);
      bson_append_binary (b, key, klen, BSON_SUBTYPE_BINARY, (const uint8_t *) data, (uint32_t) len);
   } else if ((r = encode_typed (e, b, key, klen, v)) != 0) {
      return r < 0 ? -1 : 0;
   } else {
      return fail_at (e, PyExc_TypeError, "cannot encode a value of this type", v);
   }
   return 0;
}

static int
enter (encoder *e)
{
   if (++e->depth > MAX_DEPTH) {
      return fail_at (e, PyExc_ValueError,
                      "nesting deeper than 100 levels (a container that contains itself?)", NULL);
   }
   return 0;
}

static int
encode_pair (encoder *e, bson_t *out, PyObject *k, PyObject *v)
{
   Py_ssize_t klen;
   const char *key;
   int r;
   if (!PyUnicode_Check (k)) {
      /* the key itself, as PyMongo names it: `{1: ...}` says 1, not only "int" */
      PyErr_Format (PyExc_TypeError, "a key that is not a str at %s: %R (%s); document keys must be str",
                    path_text (e), k, Py_TYPE (k)->tp_name);
      return -1;
   }
   key = str_utf8 (k, &klen);
   if (!key) {
      PyErr_Clear ();
      return fail_at (e, PyExc_ValueError, "a key that is not valid UTF-8", NULL);
   }
   path_push_key (e, key, (size_t) klen);
   if (memchr (key, '\0', (size_t) klen)) {
      r = fail_at (e, PyExc_ValueError, "a key with a NUL character", NULL);
   } else {
      r = encode_value (e, out, key, (int) klen, v);
   }
   if (r == 0) {
      path_pop (e);
   }
   return r;
}

static int
encode_mapping (encoder *e, PyObject *obj, bson_t *out)
{
   if (enter (e) < 0) {
      return -1;
   }
   if (PyDict_Check (obj)) {
      Py_ssize_t pos = 0;
      PyObject *k, *v;
      while (PyDict_Next (obj, &pos, &k, &v)) {
         if (encode_pair (e, out, k, v) < 0) {
            return -1;
         }
      }
   } else {
      PyObject *items = PyMapping_Items (obj);
      if (!items) {
         return -1;
      }
      for (Py_ssize_t i = 0; i < PyList_GET_SIZE (items); i++) {
         PyObject *kv = PyList_GET_ITEM (items, i);
         if (!PyTuple_Check (kv) || PyTuple_GET_SIZE (kv) != 2 ||
             encode_pair (e, out, PyTuple_GET_ITEM (kv, 0), PyTuple_GET_ITEM (kv, 1)) < 0) {
            Py_DECREF (items);
            return -1;
         }
      }
      Py_DECREF (items);
   }
   e->depth--;
   return 0;
}

static int
encode_sequence (encoder *e, PyObject *obj, bson_t *out)
{
   PyObject *seq = PySequence_Fast (obj, "not a sequence");
   Py_ssize_t n;
   if (!seq || enter (e) < 0) {
      Py_XDECREF (seq);
      return -1;
   }
   n = PySequence_Fast_GET_SIZE (seq);
   for (Py_ssize_t i = 0; i < n; i++) {
      char buf[16];
      const char *key;
      size_t klen = bson_uint32_to_string ((uint32_t) i, &key, buf, sizeof buf);
      path_push_index (e, i);
      if (encode_value (e, out, key, (int) klen, PySequence_Fast_GET_ITEM (seq, i)) < 0) {
         Py_DECREF (seq);
         return -1;
      }
      path_pop (e);
   }
   Py_DECREF (seq);
   e->depth--;
   return 0;
}

int
ext_encode_document (ext_state *st, PyObject *obj, bson_t *out, const char *root)
{
   (void) PyDateTimeAPI; /* datetime.h's global stays unused: see datetime_capi */
   encoder e;
   e.st = st;
   e.depth = 0;
   e.nframes = 0;
   e.root = root;
   if (!PyDict_Check (obj) && !(PyMapping_Check (obj) && PyObject_HasAttrString (obj, "keys"))) {
      PyErr_Format (PyExc_TypeError, "%s must be a dict (or another mapping), not %s", root, Py_TYPE (obj)->tp_name);
      return -1;
   }
   return encode_mapping (&e, obj, out);
}

int
ext_encode_array (ext_state *st, PyObject *obj, bson_t *out, const char *root)
{
   encoder e;
   e.st = st;
   e.depth = 0;
   e.nframes = 0;
   e.root = root;
   if (!PyList_Check (obj) && !PyTuple_Check (obj)) {
      PyErr_Format (PyExc_TypeError, "%s must be a list, not %s", root, Py_TYPE (obj)->tp_name);
      return -1;
   }
   return encode_sequence (&e, obj, out);
}

/* ---- decoding ---- */

static PyObject *decode_iter (ext_state *st, bson_iter_t *it, int as_array, int depth);

static PyObject *
call1 (PyObject *cls, PyObject *arg)
{
   PyObject *r = arg ? PyObject_CallOneArg (cls, arg) : NULL;
   Py_XDECREF (arg);
   return r;
}

/* An Int64: its type's tp_new called with a reused 1-tuple, as calling the class would do after
 * making a tuple (calling it made and freed one per value: a twentieth of decoding a flat document).
 * Only while nothing else holds the tuple, and only while Int64 has no __init__ of its own (calling
 * the class would run it). With the GIL held. */
static PyObject *
new_int64 (ext_state *st, long long n)
{
   PyTypeObject *type = (PyTypeObject *) st->Int64;
   PyObject *value = PyLong_FromLongLong (n), *args = st->int64_args, *r;
   if (!value || !args || Py_REFCNT (args) != 1 || !type->tp_new || type->tp_init != PyBaseObject_Type.tp_init) {
      return call1 (st->Int64, value);
   }
   PyTuple_SET_ITEM (args, 0, value); /* the tuple holds the reference while tp_new runs */
   r = type->tp_new (type, args, NULL);
   PyTuple_SET_ITEM (args, 0, NULL);
   Py_DECREF (value);
   return r;
}

/* Set while decoding for a connection made with tz_aware=False: datetimes come back naive (UTC).
 * Per thread: decoding calls back into Python, where another thread may decode meanwhile. */
static _Thread_local bool naive_datetimes;

static PyObject *
decode_value (ext_state *st, bson_iter_t *it, int depth)
{
   uint32_t len;
   const uint8_t *data;
   /* bson_iter_next has checked the element, so the commonest types are read with libbson's inline
    * *_unsafe accessors rather than a call into the library each (perf: a twentieth of decoding). */
   switch (bson_iter_type_unsafe (it)) {
   case BSON_TYPE_DOUBLE:
      return PyFloat_FromDouble (bson_iter_double_unsafe (it));
   case BSON_TYPE_UTF8: {
      size_t slen;
      const char *s = bson_iter_utf8_unsafe (it, &slen);
      return PyUnicode_DecodeUTF8 (s, (Py_ssize_t) slen, "replace");
   }
   case BSON_TYPE_SYMBOL: {
      const char *s = bson_iter_symbol (it, &len);
      return PyUnicode_DecodeUTF8 (s, len, "replace");
   }
   case BSON_TYPE_DOCUMENT:
   case BSON_TYPE_ARRAY: {
      bson_iter_t child;
      if (depth > MAX_DEPTH + 100 || !bson_iter_recurse (it, &child)) {
         PyErr_SetString (PyExc_ValueError, "a BSON document nested too deeply or malformed");
         return NULL;
      }
      return decode_iter (st, &child, BSON_ITER_HOLDS_ARRAY (it), depth + 1);
   }
   case BSON_TYPE_BINARY: {
      bson_subtype_t sub;
      bson_iter_binary (it, &sub, &len, &data);
      if ((sub == BSON_SUBTYPE_UUID) && len == 16) {
         PyObject *kw = Py_BuildValue ("{s:y#}", "bytes", data, (Py_ssize_t) len);
         PyObject *args = PyTuple_New (0);
         PyObject *r = kw && args ? PyObject_Call (st->uuid_UUID, args, kw) : NULL;
         Py_XDECREF (kw);
         Py_XDECREF (args);
         return r;
      }
      if (sub == BSON_SUBTYPE_BINARY) {
         return PyBytes_FromStringAndSize ((const char *) data, len);
      }
      return PyObject_CallFunction (st->Binary, "y#i", data, (Py_ssize_t) len, (int) sub);
   }
   case BSON_TYPE_OID:
      return call1 (st->ObjectId, PyBytes_FromStringAndSize ((const char *) bson_iter_oid (it)->bytes, 12));
   case BSON_TYPE_BOOL:
      return PyBool_FromLong (bson_iter_bool_unsafe (it));
   case BSON_TYPE_DATE_TIME: {
      int64_t ms = bson_iter_date_time (it);
      PyDateTime_CAPI *capi = st->datetime_capi;
      int64_t days = ms >= 0 ? ms / 86400000 : -((-ms + 86399999) / 86400000);
      int64_t rest = ms - days * 86400000;
      int y, m, d;
      civil_from_days (days, &y, &m, &d);
      if (capi && y >= 1 && y <= 9999) {
         return capi->DateTime_FromDateAndTime (y, m, d, (int) (rest / 3600000), (int) (rest / 60000 % 60),
                                                (int) (rest / 1000 % 60), (int) (rest % 1000) * 1000,
                                                naive_datetimes ? Py_None : st->utc, capi->DateTimeType);
      }
      /* outside datetime's years: its own error, from the slow path */
      return PyObject_CallFunction (st->fromtimestamp, "dO", (double) ms / 1000.0, st->utc);
   }
   case BSON_TYPE_REGEX: {
      const char *opts;
      const char *pattern = bson_iter_regex (it, &opts);
      return PyObject_CallFunction (st->Regex, "ss", pattern, opts ? opts : "");
   }
   case BSON_TYPE_CODE:
      return PyUnicode_DecodeUTF8 (bson_iter_code (it, &len), len, "replace");
   case BSON_TYPE_CODEWSCOPE: {
      uint32_t slen;
      const uint8_t *scope;
      return PyUnicode_DecodeUTF8 (bson_iter_codewscope (it, &len, &slen, &scope), len, "replace");
   }
   case BSON_TYPE_INT32:
      return PyLong_FromLong (bson_iter_int32_unsafe (it));
   case BSON_TYPE_TIMESTAMP: {
      uint32_t t, i;
      bson_iter_timestamp (it, &t, &i);
      return PyObject_CallFunction (st->Timestamp, "kk", (unsigned long) t, (unsigned long) i);
   }
   case BSON_TYPE_INT64:
      return new_int64 (st, bson_iter_int64_unsafe (it));
   case BSON_TYPE_DECIMAL128: {
      bson_decimal128_t d;
      uint64_t le[2];
      bson_iter_decimal128 (it, &d);
      le[0] = BSON_UINT64_TO_LE (d.low);
      le[1] = BSON_UINT64_TO_LE (d.high);
      return PyObject_CallMethod (st->Decimal128, "from_bid", "y#", (const char *) le, (Py_ssize_t) 16);
   }
   case BSON_TYPE_MAXKEY:
      return PyObject_CallNoArgs (st->MaxKey);
   case BSON_TYPE_MINKEY:
      return PyObject_CallNoArgs (st->MinKey);
   case BSON_TYPE_NULL:
   case BSON_TYPE_UNDEFINED:
   case BSON_TYPE_DBPOINTER:
   default:
      Py_RETURN_NONE;
   }
}

/* The key cache's set for a key: a hash of its length and of its first and last 8 bytes (4, or
 * three bytes, for shorter keys), read as words. A byte-at-a-time hash of the whole key cost a tenth of decoding a flat document (perf); a
 * collision of this cheaper one only costs a miss, since a hit compares the bytes. */
static size_t
key_cache_set (const char *key, size_t len)
{
   uint64_t head = 0, tail = 0, h;
   /* fixed-size loads only: a memcpy of a variable length was a library call, and reading its
    * result back stalled on the bytes just stored (perf: a quarter of decoding the deep document) */
   if (len >= 8) {
      memcpy (&head, key, 8);
      memcpy (&tail, key + len - 8, 8);
   } else if (len >= 4) {
      uint32_t first, last;
      memcpy (&first, key, 4);
      memcpy (&last, key + len - 4, 4);
      head = (uint64_t) first << 32 | last;
   } else if (len > 0) {
      head = (uint64_t) (unsigned char) key[0] | (uint64_t) (unsigned char) key[len / 2] << 8 |
             (uint64_t) (unsigned char) key[len - 1] << 16;
   }
   h = (head ^ (tail * 0x9E3779B97F4A7C15ull) ^ len) * 0xFF51AFD7ED558CCDull;
   return (size_t) (h >> 40) % (EXT_KEY_CACHE_SIZE / EXT_KEY_CACHE_WAYS);
}

/* A key as str, from the cache when the same bytes were decoded before (see ext_state). Only ASCII
 * keys are kept, so a cached key's characters are its bytes. */
static PyObject *
decode_key (ext_state *st, const char *key, size_t len, size_t *set_index)
{
   PyObject **set, *k;
   if (len > EXT_KEY_CACHE_MAX_LEN) {
      *set_index = SIZE_MAX;
      return PyUnicode_DecodeUTF8 (key, (Py_ssize_t) len, "replace");
   }
   *set_index = key_cache_set (key, len);
   set = &st->key_cache[*set_index * EXT_KEY_CACHE_WAYS];
   for (int w = 0; w < EXT_KEY_CACHE_WAYS; w++) {
      k = set[w];
      if (k && (size_t) PyUnicode_GET_LENGTH (k) == len && memcmp (PyUnicode_DATA (k), key, len) == 0) {
         if (w > 0) { /* most recently used first: a miss replaces the least recently used */
            memmove (set + 1, set, (size_t) w * sizeof *set);
            set[0] = k;
         }
         return Py_NewRef (k);
      }
   }
   k = PyUnicode_DecodeUTF8 (key, (Py_ssize_t) len, "replace");
   if (k && PyUnicode_IS_ASCII (k)) {
      Py_XDECREF (set[EXT_KEY_CACHE_WAYS - 1]);
      memmove (set + 1, set, (EXT_KEY_CACHE_WAYS - 1) * sizeof *set);
      set[0] = Py_NewRef (k);
   }
   return k;
}

/* A dict sized as the last document that began with the same key was: one grown a key at a time
 * is rebuilt at 6, 11, 22, 43, 86... keys, a twentieth of decoding a flat document (perf), and the
 * documents of one collection repeat their shape. A wrong hint only costs a resize or some room. */
static PyObject *
new_dict (ext_state *st, size_t hint_set)
{
   Py_ssize_t hint = hint_set == SIZE_MAX ? 0 : st->size_hints[hint_set];
   return hint > 5 ? _PyDict_NewPresized (hint) : PyDict_New ();
}

/* A document's dict is made when its first key is known (its set names the size hint), so an
 * empty document's only at the end. */
static PyObject *
decode_iter (ext_state *st, bson_iter_t *it, int as_array, int depth)
{
   size_t hint_set = SIZE_MAX;
   Py_ssize_t n = 0;
   PyObject *out = as_array ? PyList_New (0) : NULL;
   if (as_array && !out) {
      return NULL;
   }
   while (bson_iter_next (it)) {
      PyObject *v = decode_value (st, it, depth);
      int r;
      n++;
      if (!v) {
         Py_XDECREF (out);
         return NULL;
      }
      if (as_array) {
         r = PyList_Append (out, v);
      } else {
         size_t set;
         PyObject *k = decode_key (st, bson_iter_key (it), bson_iter_key_len (it), &set);
         if (k && !out && !(out = new_dict (st, hint_set = set))) {
            Py_CLEAR (k);
         }
         r = k ? PyDict_SetItem (out, k, v) : -1;
         Py_XDECREF (k);
      }
      Py_DECREF (v);
      if (r < 0) {
         Py_XDECREF (out);
         return NULL;
      }
   }
   if (!out) {
      return PyDict_New ();
   }
   if (hint_set != SIZE_MAX) {
      /* capped: a wrong hint then wastes at most a 1024-key table (about 40 KB) */
      st->size_hints[hint_set] = (uint16_t) (n < 1024 ? n : 1024);
   }
   return out;
}

PyObject *
ext_decode_document_naive (ext_state *st, const uint8_t *data, size_t len)
{
   PyObject *r;
   naive_datetimes = true;
   r = ext_decode_document (st, data, len, 0);
   naive_datetimes = false;
   return r;
}

PyObject *
ext_decode_document (ext_state *st, const uint8_t *data, size_t len, int as_array)
{
   bson_t doc;
   bson_iter_t it;
   if (!bson_init_static (&doc, data, len) || !bson_iter_init (&it, &doc)) {
      PyErr_SetString (PyExc_ValueError, "malformed BSON");
      return NULL;
   }
   return decode_iter (st, &it, as_array, 0);
}

/* ---- errors ---- */

PyObject *
ext_error_object (ext_state *st, const mgconn_error *e)
{
   const uint8_t *data;
   size_t len;
   PyObject *labels, *reason, *r;
   mgconn_error_labels (e, &data, &len);
   labels = ext_decode_document (st, data, len, 1);
   mgconn_error_reason (e, &data, &len);
   reason = ext_decode_document (st, data, len, 0);
   if (!labels || !reason) {
      Py_XDECREF (labels);
      Py_XDECREF (reason);
      return NULL;
   }
   r = PyObject_CallFunction (st->make_error, "ssisOO", mgconn_error_category_name (e->category), e->message,
                              (int) e->code, e->code_name, labels, reason);
   Py_DECREF (labels);
   Py_DECREF (reason);
   return r;
}

PyObject *
ext_raise_last (ext_state *st)
{
   const mgconn_error *e = mgconn_last_error ();
   PyObject *exc;
   if (e->category == MGCONN_ERR_INVALID_ARGUMENT) {
      PyErr_SetString (PyExc_ValueError, e->message);
      return NULL;
   }
   exc = ext_error_object (st, e);
   if (exc) {
      PyErr_SetObject ((PyObject *) Py_TYPE (exc), exc);
      Py_DECREF (exc);
   }
   return NULL;
}
