/*
 * mgconn_ffi.c: the manifest-driven libffi layer (see mgconn_ffi.h for what it promises).
 *
 * Ownership: an mgffi owns its function table (names, parameter descriptions, libffi type arrays
 * and call interfaces, all prepared once in mgffi_open) and its handle table. The library handle
 * from dlopen is never closed: libmgconn's threads may outlive any one binding.
 */
#include "mgconn_ffi.h"

#include <bson/bson.h>
#include <dlfcn.h>
#include <ffi.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The manifest's vocabulary, as the layer needs it: how a value is passed, and what it accepts. */
typedef enum {
   P_VOID,
   P_INT,    /* C int */
   P_INT32,
   P_INT64,
   P_SIZE,
   P_STRING,
   P_MEMORY, /* any caller pointer: bytes, buffers, out slots, errors, userdata */
   P_HANDLE,
   P_HANDLE_OUT,
   P_CALLBACK
} param_kind;

typedef struct {
   char *name;
   param_kind kind;
   char *handle; /* P_HANDLE, P_HANDLE_OUT */
   bool nullable;
   bool consumed; /* the call frees this handle */
} param_desc;

typedef struct {
   char *name;
   void *symbol;
   param_desc ret;
   param_desc *params;
   size_t n_params;
   ffi_type **arg_types;
   ffi_cif cif;
} function_desc;

typedef struct {
   void *ptr;
   char *type;
} live_handle;

struct mgffi {
   function_desc *functions;
   size_t n_functions;
   live_handle *handles;
   size_t n_handles, cap_handles;
   bson_t structs; /* the manifest's "structs" document */
   char error[512];
};

static int
fail (mgffi *f, const char *fmt, ...)
{
   va_list ap;
   va_start (ap, fmt);
   vsnprintf (f->error, sizeof f->error, fmt, ap);
   va_end (ap);
   return -1;
}

/* ---- reading the manifest ---- */

static bool
kind_from_vocabulary (const char *type, param_kind *kind)
{
   static const struct {
      const char *type;
      param_kind kind;
   } table[] = {
      {"void", P_VOID},         {"int", P_INT},          {"int32", P_INT32},         {"int64", P_INT64},
      {"size", P_SIZE},         {"string", P_STRING},    {"char_buffer", P_MEMORY},  {"bytes", P_MEMORY},
      {"byte_buffer", P_MEMORY}, {"bytes_out", P_MEMORY}, {"size_out", P_MEMORY},    {"int64_out", P_MEMORY},
      {"int32_out", P_MEMORY},  {"error", P_MEMORY},     {"error_const", P_MEMORY},  {"userdata", P_MEMORY}, {"host_data", P_MEMORY},
      {"handle", P_HANDLE},     {"handle_out", P_HANDLE_OUT}, {"callback", P_CALLBACK},
   };
   for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
      if (strcmp (table[i].type, type) == 0) {
         *kind = table[i].kind;
         return true;
      }
   }
   return false;
}

static ffi_type *
ffi_type_of (param_kind kind)
{
   switch (kind) {
   case P_VOID:
      return &ffi_type_void;
   case P_INT:
      return &ffi_type_sint;
   case P_INT32:
      return &ffi_type_sint32;
   case P_INT64:
      return &ffi_type_sint64;
   case P_SIZE:
      return sizeof (size_t) == 8 ? &ffi_type_uint64 : &ffi_type_uint32;
   default:
      return &ffi_type_pointer;
   }
}

static const char *
doc_string (const bson_t *doc, const char *key)
{
   bson_iter_t it;
   return bson_iter_init_find (&it, doc, key) && BSON_ITER_HOLDS_UTF8 (&it) ? bson_iter_utf8 (&it, NULL) : NULL;
}

static bool
doc_bool (const bson_t *doc, const char *key)
{
   bson_iter_t it;
   return bson_iter_init_find (&it, doc, key) && BSON_ITER_HOLDS_BOOL (&it) && bson_iter_bool (&it);
}

static int
read_param (mgffi *f, const char *fn, const bson_t *doc, param_desc *p)
{
   const char *type = doc_string (doc, "type");
   const char *name = doc_string (doc, "name");
   const char *handle = doc_string (doc, "handle");
   const char *ownership = doc_string (doc, "ownership");
   if (!type || !kind_from_vocabulary (type, &p->kind)) {
      return fail (f, "%s: the manifest's type \"%s\" is not in the vocabulary", fn, type ? type : "(none)");
   }
   p->name = bson_strdup (name ? name : "return");
   p->handle = handle ? bson_strdup (handle) : NULL;
   p->nullable = doc_bool (doc, "nullable");
   p->consumed = ownership && strcmp (ownership, "consumed") == 0;
   return 0;
}

static int
read_function (mgffi *f, void *lib, const bson_t *doc, function_desc *fd)
{
   bson_iter_t it, child;
   const char *name = doc_string (doc, "name");
   if (!name) {
      return fail (f, "a manifest function without a name");
   }
   fd->name = bson_strdup (name);
   fd->symbol = dlsym (lib, name);
   if (!fd->symbol) {
      return fail (f, "%s: in the manifest but not exported by the library", name);
   }
   if (bson_iter_init_find (&it, doc, "returns") && BSON_ITER_HOLDS_DOCUMENT (&it)) {
      const uint8_t *data;
      uint32_t len;
      bson_t ret;
      bson_iter_document (&it, &len, &data);
      bson_init_static (&ret, data, len);
      if (read_param (f, name, &ret, &fd->ret) != 0) {
         return -1;
      }
   }
   if (!bson_iter_init_find (&it, doc, "params") || !bson_iter_recurse (&it, &child)) {
      return fail (f, "%s: no params in the manifest", name);
   }
   while (bson_iter_next (&child)) {
      const uint8_t *data;
      uint32_t len;
      bson_t p;
      bson_iter_document (&child, &len, &data);
      bson_init_static (&p, data, len);
      fd->params = bson_realloc (fd->params, (fd->n_params + 1) * sizeof *fd->params);
      memset (&fd->params[fd->n_params], 0, sizeof *fd->params);
      if (read_param (f, name, &p, &fd->params[fd->n_params++]) != 0) {
         return -1;
      }
   }
   fd->arg_types = bson_malloc0 ((fd->n_params + 1) * sizeof (ffi_type *));
   for (size_t i = 0; i < fd->n_params; i++) {
      fd->arg_types[i] = ffi_type_of (fd->params[i].kind);
   }
   if (ffi_prep_cif (&fd->cif, FFI_DEFAULT_ABI, (unsigned) fd->n_params, ffi_type_of (fd->ret.kind),
                     fd->arg_types) != FFI_OK) {
      return fail (f, "%s: libffi could not prepare its call interface", name);
   }
   return 0;
}

int
mgffi_open (mgffi **out, const char *library, const char *manifest, char *err, size_t err_size)
{
   mgffi *f = bson_malloc0 (sizeof *f);
   bson_json_reader_t *reader;
   bson_error_t jerr;
   bson_t doc = BSON_INITIALIZER;
   bson_iter_t it, fns;
   void *lib;
   int rc = -1;

   *out = NULL;
   bson_init (&f->structs);
   lib = dlopen (library, RTLD_NOW | RTLD_LOCAL);
   if (!lib) {
      fail (f, "cannot load %s: %s", library, dlerror ());
      goto done;
   }
   reader = bson_json_reader_new_from_file (manifest, &jerr);
   if (!reader || bson_json_reader_read (reader, &doc, &jerr) != 1) {
      fail (f, "cannot read the manifest %s: %s", manifest, jerr.message);
      if (reader) {
         bson_json_reader_destroy (reader);
      }
      goto done;
   }
   bson_json_reader_destroy (reader);
   if (bson_iter_init_find (&it, &doc, "structs") && BSON_ITER_HOLDS_DOCUMENT (&it)) {
      const uint8_t *data;
      uint32_t len;
      bson_t src;
      bson_iter_document (&it, &len, &data);
      bson_init_static (&src, data, len);
      bson_concat (&f->structs, &src);
   }
   if (!bson_iter_init_find (&it, &doc, "functions") || !bson_iter_recurse (&it, &fns)) {
      fail (f, "the manifest %s has no functions", manifest);
      goto done;
   }
   while (bson_iter_next (&fns)) {
      const uint8_t *data;
      uint32_t len;
      bson_t fn;
      bson_iter_document (&fns, &len, &data);
      bson_init_static (&fn, data, len);
      f->functions = bson_realloc (f->functions, (f->n_functions + 1) * sizeof *f->functions);
      memset (&f->functions[f->n_functions], 0, sizeof *f->functions);
      if (read_function (f, lib, &fn, &f->functions[f->n_functions++]) != 0) {
         goto done;
      }
   }
   rc = 0;
done:
   bson_destroy (&doc);
   if (rc != 0) {
      if (err && err_size) {
         snprintf (err, err_size, "%s", f->error);
      }
      mgffi_close (f);
      return rc;
   }
   *out = f;
   return 0;
}

void
mgffi_close (mgffi *f)
{
   if (!f) {
      return;
   }
   for (size_t i = 0; i < f->n_functions; i++) {
      function_desc *fd = &f->functions[i];
      for (size_t j = 0; j < fd->n_params; j++) {
         bson_free (fd->params[j].name);
         bson_free (fd->params[j].handle);
      }
      bson_free (fd->ret.name);
      bson_free (fd->ret.handle);
      bson_free (fd->params);
      bson_free (fd->arg_types);
      bson_free (fd->name);
   }
   for (size_t i = 0; i < f->n_handles; i++) {
      bson_free (f->handles[i].type);
   }
   bson_free (f->handles);
   bson_free (f->functions);
   bson_destroy (&f->structs);
   bson_free (f);
}

const char *
mgffi_error (const mgffi *f)
{
   return f->error;
}

int64_t
mgffi_struct_layout (const mgffi *f, const char *strct, const char *field)
{
   bson_iter_t it, fields, one;
   char path[128];
   snprintf (path, sizeof path, "%s.%s", strct, field ? "fields" : "size_lp64");
   if (sizeof (void *) != 8 || !bson_iter_init (&it, &f->structs) || !bson_iter_find_descendant (&it, path, &fields)) {
      return -1;
   }
   if (!field) {
      return bson_iter_as_int64 (&fields);
   }
   if (!bson_iter_recurse (&fields, &one)) {
      return -1;
   }
   while (bson_iter_next (&one)) {
      bson_iter_t name, offset;
      if (bson_iter_recurse (&one, &name) && bson_iter_find (&name, "name") && BSON_ITER_HOLDS_UTF8 (&name) &&
          strcmp (bson_iter_utf8 (&name, NULL), field) == 0 && bson_iter_recurse (&one, &offset) &&
          bson_iter_find (&offset, "offset")) {
         return bson_iter_as_int64 (&offset);
      }
   }
   return -1;
}

size_t
mgffi_function_count (const mgffi *f)
{
   return f->n_functions;
}

/* ---- the handle table ---- */

static live_handle *
find_handle (mgffi *f, const void *ptr)
{
   for (size_t i = 0; i < f->n_handles; i++) {
      if (f->handles[i].ptr == ptr) {
         return &f->handles[i];
      }
   }
   return NULL;
}

static void
remember_handle (mgffi *f, void *ptr, const char *type)
{
   live_handle *h = find_handle (f, ptr);
   if (h) { /* the same object handed out again (a cached use_db child, a model's collection) */
      bson_free (h->type);
      h->type = bson_strdup (type);
      return;
   }
   if (f->n_handles == f->cap_handles) {
      f->cap_handles = f->cap_handles ? 2 * f->cap_handles : 16;
      f->handles = bson_realloc (f->handles, f->cap_handles * sizeof *f->handles);
   }
   f->handles[f->n_handles].ptr = ptr;
   f->handles[f->n_handles].type = bson_strdup (type);
   f->n_handles++;
}

static void
forget_handle (mgffi *f, const void *ptr)
{
   live_handle *h = find_handle (f, ptr);
   if (h) {
      bson_free (h->type);
      *h = f->handles[--f->n_handles];
   }
}

/* ---- calls ---- */

typedef union {
   int i;
   int32_t i32;
   int64_t i64;
   size_t size;
   void *ptr;
} arg_storage;

static const char *
kind_name (mgffi_kind k)
{
   static const char *const names[] = {"NULL", "an integer", "a string", "a pointer", "a handle", "void"};
   return names[k];
}

static int
check_arg (mgffi *f, const function_desc *fd, size_t i, const mgffi_value *a, arg_storage *s)
{
   const param_desc *p = &fd->params[i];
   const char *expected = NULL;
   if (a->kind == MGFFI_NULL) {
      if (!p->nullable && p->kind != P_INT && p->kind != P_INT32 && p->kind != P_INT64 && p->kind != P_SIZE) {
         return fail (f, "%s: argument %zu (`%s`) may not be NULL", fd->name, i + 1, p->name);
      }
      memset (s, 0, sizeof *s);
      return 0;
   }
   switch (p->kind) {
   case P_INT:
   case P_INT32:
      if (a->kind != MGFFI_INT) {
         expected = "an integer";
      } else if (a->v.i < INT32_MIN || a->v.i > INT32_MAX) {
         return fail (f, "%s: argument %zu (`%s`) = %lld does not fit in 32 bits", fd->name, i + 1, p->name,
                      (long long) a->v.i);
      } else if (p->kind == P_INT) {
         s->i = (int) a->v.i;
      } else {
         s->i32 = (int32_t) a->v.i;
      }
      break;
   case P_INT64:
      if (a->kind != MGFFI_INT) {
         expected = "an integer";
      } else {
         s->i64 = a->v.i;
      }
      break;
   case P_SIZE:
      if (a->kind != MGFFI_INT) {
         expected = "a length";
      } else if (a->v.i < 0) {
         return fail (f, "%s: argument %zu (`%s`) is a length and cannot be %lld", fd->name, i + 1, p->name,
                      (long long) a->v.i);
      } else {
         s->size = (size_t) a->v.i;
      }
      break;
   case P_STRING:
      if (a->kind != MGFFI_STRING) {
         expected = "a string";
      } else {
         s->ptr = (void *) a->v.str;
      }
      break;
   case P_MEMORY:
   case P_HANDLE_OUT:
   case P_CALLBACK:
      if (a->kind != MGFFI_POINTER) {
         expected = p->kind == P_HANDLE_OUT ? "a pointer to a handle slot" : "a pointer";
      } else {
         s->ptr = a->v.ptr;
      }
      break;
   case P_HANDLE: {
      live_handle *h;
      if (a->kind != MGFFI_HANDLE) {
         return fail (f, "%s: argument %zu (`%s`) must be a %s handle, got %s", fd->name, i + 1, p->name, p->handle,
                      kind_name (a->kind));
      }
      h = find_handle (f, a->v.ptr);
      if (!h) {
         return fail (f, "%s: argument %zu (`%s`) is not a live %s handle (already freed, or never handed out by "
                         "libmgconn)",
                      fd->name, i + 1, p->name, p->handle);
      }
      if (strcmp (h->type, p->handle) != 0 || (a->handle && strcmp (a->handle, p->handle) != 0)) {
         return fail (f, "%s: argument %zu (`%s`) must be a %s handle, got a %s handle", fd->name, i + 1, p->name,
                      p->handle, h->type);
      }
      s->ptr = a->v.ptr;
      break;
   }
   case P_VOID:
      return fail (f, "%s: a void parameter in the manifest", fd->name);
   }
   if (expected) {
      return fail (f, "%s: argument %zu (`%s`) must be %s, got %s", fd->name, i + 1, p->name, expected,
                   kind_name (a->kind));
   }
   return 0;
}

int
mgffi_call (mgffi *f, const char *name, const mgffi_value *args, size_t nargs, mgffi_value *ret)
{
   function_desc *fd = NULL;
   arg_storage storage[16];
   void *values[16];
   union {
      ffi_arg word;
      int64_t i64;
      void *ptr;
   } result;
   mgffi_value r = {MGFFI_VOID, NULL, {0}};

   for (size_t i = 0; i < f->n_functions; i++) {
      if (strcmp (f->functions[i].name, name) == 0) {
         fd = &f->functions[i];
         break;
      }
   }
   if (!fd) {
      return fail (f, "%s: no such function in the manifest", name);
   }
   if (nargs != fd->n_params) {
      return fail (f, "%s takes %zu arguments (the manifest), %zu given", name, fd->n_params, nargs);
   }
   if (nargs > 16) {
      return fail (f, "%s: more than 16 parameters", name);
   }
   for (size_t i = 0; i < nargs; i++) {
      if (check_arg (f, fd, i, &args[i], &storage[i]) != 0) {
         return -1;
      }
      values[i] = &storage[i];
   }
   memset (&result, 0, sizeof result);
   ffi_call (&fd->cif, FFI_FN (fd->symbol), &result, values);

   /* Integral results narrower than a register come back widened to ffi_arg. */
   switch (fd->ret.kind) {
   case P_INT:
   case P_INT32:
      r.kind = MGFFI_INT;
      r.v.i = (int32_t) result.word;
      break;
   case P_INT64:
      r.kind = MGFFI_INT;
      r.v.i = result.i64;
      break;
   case P_SIZE:
      r.kind = MGFFI_INT;
      r.v.i = (int64_t) result.word;
      break;
   case P_STRING:
      r.kind = result.ptr ? MGFFI_STRING : MGFFI_NULL;
      r.v.str = result.ptr;
      break;
   case P_HANDLE:
      r.kind = result.ptr ? MGFFI_HANDLE : MGFFI_NULL;
      r.handle = fd->ret.handle;
      r.v.ptr = result.ptr;
      if (result.ptr) {
         remember_handle (f, result.ptr, fd->ret.handle);
      }
      break;
   case P_VOID:
      break;
   default:
      r.kind = result.ptr ? MGFFI_POINTER : MGFFI_NULL;
      r.v.ptr = result.ptr;
      break;
   }
   /* What the call handed out and what it freed. */
   for (size_t i = 0; i < nargs; i++) {
      const param_desc *p = &fd->params[i];
      if (p->kind == P_HANDLE_OUT && args[i].kind == MGFFI_POINTER && args[i].v.ptr) {
         void *h = *(void **) args[i].v.ptr;
         if (h) {
            remember_handle (f, h, p->handle);
         }
      } else if (p->kind == P_HANDLE && p->consumed) {
         forget_handle (f, args[i].v.ptr);
      }
   }
   if (ret) {
      *ret = r;
   }
   return 0;
}
