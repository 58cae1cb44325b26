/*
 * mgconn_ffi.h: call any libmgconn function by name, through libffi, with its arguments checked
 * against the ABI manifest (bindings/abi/mgconn.abi.json).
 *
 * This is what a generic FFI host does (ctypes, cffi, LuaJIT's ffi, an engine's own binder): it
 * loads the library with dlopen, never includes mgconn.h, and knows the functions only from the
 * manifest. The layer prepares one libffi call interface per manifest function when it opens, and
 * refuses a call whose arguments do not fit the manifest, naming the function, the parameter and
 * what was expected, so a binding bug is an error message rather than a crash.
 *
 * Handles are checked too: the layer remembers every handle the library handed out (through an
 * `out` parameter or a return value) with its type, and forgets it when it is passed to the
 * function that frees it. A handle of the wrong type, or one already freed, is refused.
 *
 * Thread rule: an mgffi belongs to the thread that opened it (its handle table is not locked), as
 * the library's own host-thread rule asks of the calls it makes.
 */
#ifndef MGCONN_FFI_H
#define MGCONN_FFI_H

#include <stddef.h>
#include <stdint.h>

typedef struct mgffi mgffi;

typedef enum {
   MGFFI_NULL = 0, /* NULL, for a parameter the manifest marks nullable */
   MGFFI_INT,      /* int, int32_t, int64_t (range-checked) and size_t (when >= 0) */
   MGFFI_STRING,   /* const char * */
   MGFFI_POINTER,  /* caller memory: BSON bytes, buffers, out slots, error structs */
   MGFFI_HANDLE,   /* an opaque handle with its type name ("runtime", "connection", ...) */
   MGFFI_VOID      /* the return value of a void function */
} mgffi_kind;

typedef struct {
   mgffi_kind kind;
   const char *handle; /* MGFFI_HANDLE: the type name, static */
   union {
      int64_t i;
      const char *str;
      void *ptr;
   } v;
} mgffi_value;

static inline mgffi_value
mgffi_null (void)
{
   mgffi_value v = {MGFFI_NULL, NULL, {0}};
   return v;
}
static inline mgffi_value
mgffi_int (int64_t i)
{
   mgffi_value v = {MGFFI_INT, NULL, {0}};
   v.v.i = i;
   return v;
}
static inline mgffi_value
mgffi_str (const char *s)
{
   mgffi_value v = {MGFFI_STRING, NULL, {0}};
   v.v.str = s;
   return v;
}
static inline mgffi_value
mgffi_ptr (void *p)
{
   mgffi_value v = {MGFFI_POINTER, NULL, {0}};
   v.v.ptr = p;
   return v;
}
static inline mgffi_value
mgffi_handle (const char *type, void *h)
{
   mgffi_value v = {MGFFI_HANDLE, type, {0}};
   v.v.ptr = h;
   return v;
}

/* Loads `library` (a path for dlopen) and `manifest` (the JSON file), resolves every function of the
 * manifest and prepares its call interface. Returns 0, or -1 with the reason in `err`. */
int mgffi_open (mgffi **out, const char *library, const char *manifest, char *err, size_t err_size);
/* Unloads nothing (the library stays loaded for the process) and frees the layer. */
void mgffi_close (mgffi *f);

/* Calls `name` with `nargs` arguments. On a mismatch nothing is called and -1 is returned with
 * mgffi_error() saying why. Otherwise the function's result is in *ret (may be NULL) and 0 is
 * returned: the library's own result codes are in ret, not in this return value. */
int mgffi_call (mgffi *f, const char *name, const mgffi_value *args, size_t nargs, mgffi_value *ret);
/* Why the last mgffi_open or mgffi_call was refused. Borrowed. */
const char *mgffi_error (const mgffi *f);

/* The layout of a caller-allocated struct from the manifest: with `field` NULL its size, else the
 * field's byte offset; -1 when the manifest does not know it. */
int64_t mgffi_struct_layout (const mgffi *f, const char *strct, const char *field);

/* How many functions the manifest declared (all resolved and prepared). */
size_t mgffi_function_count (const mgffi *f);

#endif /* MGCONN_FFI_H */
