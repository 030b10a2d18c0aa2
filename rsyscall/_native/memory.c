/* The two objects every pointer operation makes, in C.
 *
 * Splitting and merging pointers happens on every syscall that returns a
 * size, so the objects involved are made here: an `Allocation` (a byte range
 * in an arena, given back to the arena when collected) and `PointerBase`, the
 * fields of every pointer (rsyscall.memory.pointer defines the kinds and
 * their rules in Python on top).  Made in Python, the objects of one
 * split-and-merge cost several microseconds; made here, a fraction of one. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#include "memory.h"

/* (first, second), taking both references (released if that fails). */
static PyObject *steal_pair(PyObject *first, PyObject *second)
{
    PyObject *pair = PyTuple_New(2);
    if (pair == NULL) {
        Py_DECREF(first);
        Py_DECREF(second);
        return NULL;
    }
    PyTuple_SET_ITEM(pair, 0, first);
    PyTuple_SET_ITEM(pair, 1, second);
    return pair;
}

/* ---- Allocation ---- */

typedef struct {
    PyObject_HEAD
    PyObject *arena; /* NULL once handed on: it then frees nothing */
    unsigned long address;
    Py_ssize_t size;
} AllocationObject;

static PyTypeObject AllocationType;

static PyObject *allocation_make(PyObject *arena, unsigned long address, Py_ssize_t size)
{
    AllocationObject *self = PyObject_New(AllocationObject, &AllocationType);
    if (self == NULL)
        return NULL;
    Py_XINCREF(arena);
    self->arena = arena;
    self->address = address;
    self->size = size;
    return (PyObject *)self;
}

static PyObject *allocation_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    PyObject *arena;
    unsigned long address;
    Py_ssize_t size;
    static char *names[] = {"arena", "address", "size", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "Okn", names, &arena, &address, &size))
        return NULL;
    if (size < 0) {
        PyErr_SetString(PyExc_ValueError, "negative allocation size");
        return NULL;
    }
    return allocation_make(arena == Py_None ? NULL : arena, address, size);
}

static void allocation_dealloc(AllocationObject *self)
{
    PyObject *arena = self->arena;
    if (arena != NULL) {
        /* Give the range back, as a finalizer would: whatever exception is
         * being raised meanwhile is kept, and an error here has nobody to go
         * to. */
        self->arena = NULL;
        PyObject *type, *value, *traceback;
        PyErr_Fetch(&type, &value, &traceback);
        PyObject *result = PyObject_CallMethod(arena, "free", "kn", self->address, self->size);
        if (result == NULL)
            PyErr_WriteUnraisable(arena);
        Py_XDECREF(result);
        PyErr_Restore(type, value, traceback);
        Py_DECREF(arena);
    }
    PyObject_Free(self);
}

static int disarm(AllocationObject *self, PyObject **arena)
{
    if (self->arena == NULL) {
        PyErr_SetString(PyExc_ValueError, "allocation already handed on");
        return -1;
    }
    *arena = self->arena; /* the caller owns this reference now */
    self->arena = NULL;
    return 0;
}

/* Split `self` at `offset` into two new allocations; NULL and ValueError if
 * the offset is outside it. */
static int allocation_split_raw(AllocationObject *self, Py_ssize_t offset,
                                PyObject **first, PyObject **second)
{
    if (offset < 0 || offset > self->size) {
        PyErr_Format(PyExc_ValueError, "split offset %zd outside 0..%zd", offset, self->size);
        return -1;
    }
    PyObject *arena;
    if (disarm(self, &arena) < 0)
        return -1;
    *first = allocation_make(arena, self->address, offset);
    *second = *first == NULL ? NULL
        : allocation_make(arena, self->address + offset, self->size - offset);
    if (*second == NULL) {
        /* Put the range back whole rather than lose it. */
        Py_CLEAR(*first);
        self->arena = arena;
        return -1;
    }
    Py_DECREF(arena);
    return 0;
}

static PyObject *allocation_split(AllocationObject *self, PyObject *arg)
{
    Py_ssize_t offset = PyLong_AsSsize_t(arg);
    if (offset == -1 && PyErr_Occurred())
        return NULL;
    PyObject *first, *second;
    if (allocation_split_raw(self, offset, &first, &second) < 0)
        return NULL;
    return steal_pair(first, second);
}

static PyObject *allocation_merge_raw(AllocationObject *self, PyObject *other_obj)
{
    if (!PyObject_TypeCheck(other_obj, &AllocationType)) {
        PyErr_SetString(PyExc_TypeError, "can only merge with an Allocation");
        return NULL;
    }
    AllocationObject *other = (AllocationObject *)other_obj;
    if (self->arena == NULL || other->arena != self->arena || self == other) {
        PyErr_SetString(PyExc_ValueError, "can only merge allocations from the same arena");
        return NULL;
    }
    if (self->address + (unsigned long)self->size != other->address) {
        PyErr_SetString(PyExc_ValueError,
                        "can only merge a range with the range right after it");
        return NULL;
    }
    PyObject *merged = allocation_make(self->arena, self->address, self->size + other->size);
    if (merged == NULL)
        return NULL;
    Py_CLEAR(self->arena);
    Py_CLEAR(other->arena);
    return merged;
}

static PyObject *allocation_disarm(AllocationObject *self, PyObject *unused)
{
    PyObject *arena;
    if (disarm(self, &arena) < 0)
        return NULL;
    return arena;
}

static PyObject *allocation_repr(AllocationObject *self)
{
    return PyUnicode_FromFormat("Allocation(%#lx, %zd)", self->address, self->size);
}

static PyObject *allocation_get_arena(AllocationObject *self, void *closure)
{
    PyObject *arena = self->arena ? self->arena : Py_None;
    Py_INCREF(arena);
    return arena;
}

static PyMethodDef allocation_methods[] = {
    {"split", (PyCFunction)allocation_split, METH_O,
     "split(offset) -> (first, rest): the first `offset` bytes and the rest,\n"
     "as two allocations; this one is handed on and frees nothing."},
    {"merge", (PyCFunction)allocation_merge_raw, METH_O,
     "merge(other) -> Allocation covering this one and `other`, right after it."},
    {"_disarm", (PyCFunction)allocation_disarm, METH_NOARGS,
     "_disarm() -> arena: hand the range on; this allocation then frees nothing."},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef allocation_members[] = {
    {"address", T_ULONG, offsetof(AllocationObject, address), READONLY, "first byte"},
    {"size", T_PYSSIZET, offsetof(AllocationObject, size), READONLY, "length in bytes"},
    {NULL, 0, 0, 0, NULL},
};

static PyGetSetDef allocation_getset[] = {
    {"arena", (getter)allocation_get_arena, NULL,
     "the Arena it belongs to, or None once handed on", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject AllocationType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "rsyscall.memory.allocator.Allocation",
    .tp_basicsize = sizeof(AllocationObject),
    .tp_dealloc = (destructor)allocation_dealloc,
    .tp_repr = (reprfunc)allocation_repr,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Allocation(arena, address, size): a range of bytes in an arena, given\n"
              "back to it (arena.free(address, size)) when garbage collected.\n\n"
              "`split` and `merge` hand the range on to new allocations; the old\n"
              "one then frees nothing.",
    .tp_methods = allocation_methods,
    .tp_members = allocation_members,
    .tp_getset = allocation_getset,
    .tp_new = allocation_new,
};

/* ---- PointerBase ---- */

typedef struct {
    PyObject_HEAD
    PyObject *task;
    PyObject *space;
    PyObject *serializer;
    PyObject *kind;
    PyObject *alloc; /* NULL or None: consumed */
    PyObject *value; /* a WrittenPointer's value */
} PointerObject;

static PyTypeObject PointerBaseType;

static int pointer_traverse(PointerObject *self, visitproc visit, void *arg)
{
    /* The type itself is visited by subtype_traverse: every pointer is of a
     * Python subclass. */
    Py_VISIT(self->task);
    Py_VISIT(self->space);
    Py_VISIT(self->serializer);
    Py_VISIT(self->kind);
    Py_VISIT(self->alloc);
    Py_VISIT(self->value);
    return 0;
}

static int pointer_clear(PointerObject *self)
{
    Py_CLEAR(self->task);
    Py_CLEAR(self->space);
    Py_CLEAR(self->serializer);
    Py_CLEAR(self->kind);
    Py_CLEAR(self->alloc);
    Py_CLEAR(self->value);
    return 0;
}

/* Reached through subtype_dealloc of the Python subclasses, which drops
 * their reference to the type afterwards. */
static void pointer_dealloc(PointerObject *self)
{
    PyObject_GC_UnTrack(self);
    pointer_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int pointer_init(PointerObject *self, PyObject *args, PyObject *kwds)
{
    PyObject *task, *serializer, *kind, *alloc, *value = NULL;
    static char *names[] = {"task", "serializer", "kind", "alloc", "value", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOO|O", names, &task, &serializer, &kind,
                                     &alloc, &value))
        return -1;
    PyObject *space = PyObject_GetAttrString(task, "space");
    if (space == NULL)
        return -1;
    Py_INCREF(task);
    Py_INCREF(serializer);
    Py_INCREF(kind);
    Py_INCREF(alloc);
    Py_XINCREF(value);
    Py_XSETREF(self->task, task);
    Py_XSETREF(self->space, space);
    Py_XSETREF(self->serializer, serializer);
    Py_XSETREF(self->kind, kind);
    Py_XSETREF(self->alloc, alloc);
    Py_XSETREF(self->value, value);
    return 0;
}

/* A new pointer of class `cls` to `alloc` (a new reference is taken), with
 * this one's task, space, serializer and kind. */
static PyObject *derive(PointerObject *self, PyTypeObject *cls, PyObject *alloc)
{
    PointerObject *made = (PointerObject *)cls->tp_alloc(cls, 0);
    if (made == NULL)
        return NULL;
    Py_XINCREF(self->task);
    made->task = self->task;
    Py_XINCREF(self->space);
    made->space = self->space;
    Py_XINCREF(self->serializer);
    made->serializer = self->serializer;
    Py_XINCREF(self->kind);
    made->kind = self->kind;
    Py_INCREF(alloc);
    made->alloc = alloc;
    return (PyObject *)made;
}

static int check_pointer_class(PyObject *cls)
{
    if (!PyType_Check(cls) || !PyType_IsSubtype((PyTypeObject *)cls, &PointerBaseType)) {
        PyErr_SetString(PyExc_TypeError, "expected a pointer class");
        return -1;
    }
    return 0;
}

static PyObject *pointer_derive(PointerObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "_derive(cls, alloc)");
        return NULL;
    }
    if (check_pointer_class(args[0]) < 0)
        return NULL;
    return derive(self, (PyTypeObject *)args[0], args[1]);
}

static PyObject *pointer_split_to(PointerObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "_split_to(first_cls, second_cls, alloc, offset)");
        return NULL;
    }
    if (check_pointer_class(args[0]) < 0 || check_pointer_class(args[1]) < 0)
        return NULL;
    if (!PyObject_TypeCheck(args[2], &AllocationType)) {
        PyErr_SetString(PyExc_TypeError, "expected an Allocation");
        return NULL;
    }
    Py_ssize_t offset = PyLong_AsSsize_t(args[3]);
    if (offset == -1 && PyErr_Occurred())
        return NULL;
    PyObject *first_alloc, *second_alloc;
    if (allocation_split_raw((AllocationObject *)args[2], offset, &first_alloc, &second_alloc) < 0)
        return NULL;
    PyObject *first = derive(self, (PyTypeObject *)args[0], first_alloc);
    PyObject *second = first == NULL ? NULL : derive(self, (PyTypeObject *)args[1], second_alloc);
    Py_DECREF(first_alloc);
    Py_DECREF(second_alloc);
    if (second == NULL) {
        Py_XDECREF(first);
        return NULL;
    }
    return steal_pair(first, second);
}

static PyObject *pointer_merge_to(PointerObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "_merge_to(cls, other)");
        return NULL;
    }
    if (check_pointer_class(args[0]) < 0)
        return NULL;
    if (!PyObject_TypeCheck(args[1], &PointerBaseType)) {
        PyErr_SetString(PyExc_TypeError, "can only merge with a pointer");
        return NULL;
    }
    PointerObject *other = (PointerObject *)args[1];
    if (self->alloc == NULL || other->alloc == NULL ||
        !PyObject_TypeCheck(self->alloc, &AllocationType) ||
        !PyObject_TypeCheck(other->alloc, &AllocationType)) {
        PyErr_SetString(PyExc_ValueError, "cannot merge a consumed pointer");
        return NULL;
    }
    PyObject *merged = allocation_merge_raw((AllocationObject *)self->alloc, other->alloc);
    if (merged == NULL)
        return NULL;
    PyObject *made = derive(self, (PyTypeObject *)args[0], merged);
    Py_DECREF(merged);
    if (made == NULL)
        return NULL;
    Py_SETREF(self->alloc, Py_NewRef(Py_None));
    Py_SETREF(other->alloc, Py_NewRef(Py_None));
    return made;
}

static PyMethodDef pointer_methods[] = {
    {"_derive", (PyCFunction)(void (*)(void))pointer_derive, METH_FASTCALL,
     "_derive(cls, alloc): a pointer of class cls to alloc, with this one's\n"
     "task, space, serializer and kind."},
    {"_split_to", (PyCFunction)(void (*)(void))pointer_split_to, METH_FASTCALL,
     "_split_to(first_cls, second_cls, alloc, offset): split alloc (handing\n"
     "it on) and return pointers of those classes to the two parts."},
    {"_merge_to", (PyCFunction)(void (*)(void))pointer_merge_to, METH_FASTCALL,
     "_merge_to(cls, other): consume this pointer and other (right after it)\n"
     "and return a pointer of class cls to both."},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef pointer_members[] = {
    {"task", T_OBJECT, offsetof(PointerObject, task), READONLY,
     "the task this pointer was made for"},
    {"space", T_OBJECT, offsetof(PointerObject, space), READONLY,
     "the address space the memory is in"},
    {"serializer", T_OBJECT, offsetof(PointerObject, serializer), READONLY,
     "how the pointed-to value is turned into bytes and back"},
    {"_kind", T_OBJECT, offsetof(PointerObject, kind), 0, NULL},
    {"_alloc", T_OBJECT, offsetof(PointerObject, alloc), 0, NULL},
    {"_value", T_OBJECT, offsetof(PointerObject, value), 0, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyTypeObject PointerBaseType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "rsyscall.memory.pointer.PointerBase",
    .tp_basicsize = sizeof(PointerObject),
    .tp_dealloc = (destructor)pointer_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "The fields every pointer has (the kinds are defined on top of it).",
    .tp_traverse = (traverseproc)pointer_traverse,
    .tp_clear = (inquiry)pointer_clear,
    .tp_methods = pointer_methods,
    .tp_members = pointer_members,
    .tp_init = (initproc)pointer_init,
    .tp_new = PyType_GenericNew,
};

int rsys_add_memory_types(PyObject *module)
{
    if (PyType_Ready(&AllocationType) < 0 || PyType_Ready(&PointerBaseType) < 0)
        return -1;
    if (PyModule_AddObjectRef(module, "Allocation", (PyObject *)&AllocationType) < 0 ||
        PyModule_AddObjectRef(module, "PointerBase", (PyObject *)&PointerBaseType) < 0)
        return -1;
    return 0;
}
