/*
 * compat.h: the few CPython APIs the extension uses that are newer than Python 3.9, defined for the
 * versions that lack them, so the same sources build on 3.9 to 3.13. Each shim does what the newer
 * CPython does (its own code is the reference), and disappears on the versions that have the API.
 * Included by ext.h right after Python.h.
 */
#ifndef MGCONN_EXT_COMPAT_H
#define MGCONN_EXT_COMPAT_H

#if PY_VERSION_HEX < 0x030A0000 /* 3.9 */

static inline PyObject *
compat_new_ref (PyObject *o)
{
   Py_INCREF (o);
   return o;
}
#define Py_NewRef(o) compat_new_ref ((PyObject *) (o))

/* 3.10's datetime.h macro, on the same struct fields. */
#define PyDateTime_DATE_GET_TZINFO(o) \
   (((PyDateTime_DateTime *) (o))->hastzinfo ? ((PyDateTime_DateTime *) (o))->tzinfo : Py_None)

/* The flag takes the bit 3.10 gives it (unused by 3.9), and a type created with it gets what 3.10
 * gives it: no tp_new, so calling the type raises "cannot create ... instances" instead of making an
 * object with no handle inside. */
#define Py_TPFLAGS_DISALLOW_INSTANTIATION (1UL << 7)

static inline PyObject *
compat_type_from_module_and_spec (PyObject *module, PyType_Spec *spec, PyObject *bases)
{
   PyObject *type = PyType_FromModuleAndSpec (module, spec, bases);
   if (type && (spec->flags & Py_TPFLAGS_DISALLOW_INSTANTIATION)) {
      ((PyTypeObject *) type)->tp_new = NULL;
   }
   return type;
}
#define PyType_FromModuleAndSpec compat_type_from_module_and_spec

#endif /* < 3.10 */

#if PY_VERSION_HEX < 0x030B0000 /* 3.9 and 3.10 */

/* 3.11's PyType_GetModuleByDef: the module of the first heap type in the MRO whose module was made
 * from `def` (a borrowed reference), as CPython does it. */
static inline PyObject *
compat_type_get_module_by_def (PyTypeObject *type, PyModuleDef *def)
{
   PyObject *mro = type->tp_mro;
   for (Py_ssize_t i = 0; mro && i < PyTuple_GET_SIZE (mro); i++) {
      PyTypeObject *super = (PyTypeObject *) PyTuple_GET_ITEM (mro, i);
      if (!PyType_HasFeature (super, Py_TPFLAGS_HEAPTYPE)) {
         continue; /* only heap types have a module */
      }
      PyObject *module = ((PyHeapTypeObject *) super)->ht_module;
      if (module && PyModule_GetDef (module) == def) {
         return module;
      }
   }
   PyErr_Format (PyExc_TypeError, "PyType_GetModuleByDef: No superclass of '%s' has the given module",
                 type->tp_name);
   return NULL;
}
#define PyType_GetModuleByDef compat_type_get_module_by_def

#endif /* < 3.11 */

#endif
