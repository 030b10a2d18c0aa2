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

/* ---- the pointer kinds, as pointer.py defines them ---- */

/* Set once by rsyscall.memory.pointer (set_pointer_kinds). */
static PyObject *readable_kind;         /* ReadablePointer */
static PyObject *written_kind;          /* WrittenPointer */
static PyObject *plain_kind;            /* Pointer */
static PyObject *linear_kind;           /* LinearPointer */
static PyObject *use_after_consume;     /* UseAfterConsumeError */

static PyObject *raw_set_pointer_kinds(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError,
                        "set_pointer_kinds(Pointer, ReadablePointer, WrittenPointer, "
                        "LinearPointer, UseAfterConsumeError)");
        return NULL;
    }
    for (int i = 0; i < 4; i++)
        if (check_pointer_class(args[i]) < 0)
            return NULL;
    Py_XSETREF(plain_kind, Py_NewRef(args[0]));
    Py_XSETREF(readable_kind, Py_NewRef(args[1]));
    Py_XSETREF(written_kind, Py_NewRef(args[2]));
    Py_XSETREF(linear_kind, Py_NewRef(args[3]));
    Py_XSETREF(use_after_consume, Py_NewRef(args[4]));
    Py_RETURN_NONE;
}

static PyObject *consumed_error(PyObject *pointer)
{
    PyErr_Format(use_after_consume != NULL ? use_after_consume : PyExc_ValueError,
                 "%s was already consumed", Py_TYPE(pointer)->tp_name);
    return NULL;
}

static int is_live(PointerObject *pointer)
{
    return pointer->alloc != NULL && PyObject_TypeCheck(pointer->alloc, &AllocationType);
}

/* Pointer.merge: consume self and other (which starts where self ends) and
 * return one pointer to both, readable only if both were, written (of
 * bytes) if both were written pointers of bytes. */
static PyObject *pointer_merge(PyObject *first, PyObject *second)
{
    if (written_kind == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "pointer kinds not set");
        return NULL;
    }
    if (!PyObject_TypeCheck(first, &PointerBaseType) ||
        !PyObject_TypeCheck(second, &PointerBaseType)) {
        if (PyObject_TypeCheck(first, &PointerBaseType))
            return PyErr_Format(PyExc_TypeError, "can only merge with a Pointer, not %s",
                                Py_TYPE(second)->tp_name);
        Py_RETURN_NOTIMPLEMENTED;
    }
    PointerObject *self = (PointerObject *)first, *other = (PointerObject *)second;
    /* Written (of bytes) from two written pointers, readable from two
     * readable ones, plain otherwise. */
    PyObject *kind;
    if (Py_TYPE(first) == (PyTypeObject *)written_kind &&
        Py_TYPE(second) == (PyTypeObject *)written_kind)
        kind = written_kind;
    else if (PyObject_TypeCheck(first, (PyTypeObject *)readable_kind) &&
             PyObject_TypeCheck(second, (PyTypeObject *)readable_kind))
        kind = readable_kind;
    else
        kind = plain_kind;
    if (!is_live(self))
        return consumed_error(first);
    if (!is_live(other))
        return consumed_error(second);
    if (self->space != other->space) {
        PyErr_SetString(PyExc_ValueError, "cannot merge pointers in different address spaces");
        return NULL;
    }
    AllocationObject *mine = (AllocationObject *)self->alloc;
    AllocationObject *theirs = (AllocationObject *)other->alloc;
    if (mine->address + mine->size != theirs->address) {
        PyErr_SetString(PyExc_ValueError, "can only merge a pointer with the one right after it");
        return NULL;
    }
    PyObject *value = NULL;
    if (kind == written_kind) {
        if (self->value != NULL && other->value != NULL && PyBytes_CheckExact(self->value) &&
            PyBytes_CheckExact(other->value)) {
            Py_ssize_t mine_size = PyBytes_GET_SIZE(self->value);
            Py_ssize_t theirs_size = PyBytes_GET_SIZE(other->value);
            if (theirs_size == 0 || mine_size == 0) {
                /* The joined value is one of them (no copy of the data). */
                value = Py_NewRef(theirs_size == 0 ? self->value : other->value);
            } else {
                value = PyBytes_FromStringAndSize(NULL, mine_size + theirs_size);
                if (value == NULL)
                    return NULL;
                memcpy(PyBytes_AS_STRING(value), PyBytes_AS_STRING(self->value), mine_size);
                memcpy(PyBytes_AS_STRING(value) + mine_size, PyBytes_AS_STRING(other->value),
                       theirs_size);
            }
        } else {
            kind = readable_kind; /* the parts of a struct: initialized, no more */
        }
    }
    PyObject *merged = allocation_merge_raw(mine, (PyObject *)theirs);
    if (merged == NULL) {
        Py_XDECREF(value);
        return NULL;
    }
    PointerObject *made = (PointerObject *)derive(self, (PyTypeObject *)kind, merged);
    Py_DECREF(merged);
    if (made == NULL) {
        Py_XDECREF(value);
        return NULL;
    }
    made->value = value;
    Py_SETREF(self->alloc, Py_NewRef(Py_None));
    Py_SETREF(other->alloc, Py_NewRef(Py_None));
    return (PyObject *)made;
}

static PyObject *pointer_merge_method(PyObject *self, PyObject *other)
{
    PyObject *made = pointer_merge(self, other);
    if (made == Py_NotImplemented) {
        Py_DECREF(made);
        return PyErr_Format(PyExc_TypeError, "can only merge with a Pointer, not %s",
                            Py_TYPE(other)->tp_name);
    }
    return made;
}

/* take/borrow's checks: a live pointer in `task`'s address space, of at
 * least `minimum` bytes; its allocation (borrowed) or NULL. */
static AllocationObject *usable(PyObject *ptr, PyObject *task, Py_ssize_t minimum)
{
    PointerObject *pointer = (PointerObject *)ptr;
    if (!is_live(pointer)) {
        consumed_error(ptr);
        return NULL;
    }
    static PyObject *space_name;
    if (space_name == NULL && (space_name = PyUnicode_InternFromString("space")) == NULL)
        return NULL;
    PyObject *space = PyObject_GetAttr(task, space_name);
    if (space == NULL)
        return NULL;
    if (pointer->space != space) {
        PyErr_Format(PyExc_ValueError, "pointer is in %R, not the task's %R", pointer->space,
                     space);
        Py_DECREF(space);
        return NULL;
    }
    Py_DECREF(space);
    AllocationObject *alloc = (AllocationObject *)pointer->alloc;
    if (alloc->size < minimum) {
        PyErr_Format(PyExc_ValueError, "buffer of %zd bytes is too small, need %zd",
                     (Py_ssize_t)alloc->size, minimum);
        return NULL;
    }
    return alloc;
}

static int parse_use(const char *name, PyObject *const *args, Py_ssize_t nargs,
                     Py_ssize_t *minimum)
{
    *minimum = 0;
    if (nargs < 2 || nargs > 3) {
        PyErr_Format(PyExc_TypeError, "%s(ptr, task, minimum=0)", name);
        return -1;
    }
    if (nargs == 3) {
        *minimum = PyLong_AsSsize_t(args[2]);
        if (*minimum == -1 && PyErr_Occurred())
            return -1;
    }
    return 0;
}

static PyObject *raw_take(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_ssize_t minimum;
    if (parse_use("take", args, nargs, &minimum) < 0)
        return NULL;
    if (plain_kind == NULL || !PyObject_TypeCheck(args[0], &PointerBaseType))
        return PyErr_Format(PyExc_TypeError, "expected a Pointer, got %s",
                            Py_TYPE(args[0])->tp_name);
    AllocationObject *alloc = usable(args[0], args[1], minimum);
    if (alloc == NULL)
        return NULL;
    PointerObject *pointer = (PointerObject *)args[0];
    PyObject *taken = pointer->alloc; /* our reference now */
    pointer->alloc = Py_NewRef(Py_None);
    return taken;
}

static PyObject *raw_borrow(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_ssize_t minimum;
    if (parse_use("borrow", args, nargs, &minimum) < 0)
        return NULL;
    if (readable_kind == NULL || !PyObject_TypeCheck(args[0], (PyTypeObject *)readable_kind)) {
        if (PyObject_TypeCheck(args[0], &PointerBaseType))
            PyErr_SetString(PyExc_TypeError,
                            "this syscall reads the buffer, so it needs a written pointer "
                            "(from thread.ptr(value) or pointer.write(value)), not an "
                            "uninitialized Pointer");
        else
            PyErr_Format(PyExc_TypeError, "expected a WrittenPointer, got %s",
                         Py_TYPE(args[0])->tp_name);
        return NULL;
    }
    AllocationObject *alloc = usable(args[0], args[1], minimum);
    if (alloc == NULL)
        return NULL;
    return Py_NewRef((PyObject *)alloc);
}

/* Split `alloc` at `offset` into pointers of classes first and second
 * (a new pair), with self's fields. */
static PyObject *split_to(PointerObject *self, PyObject *first_cls, PyObject *second_cls,
                          PyObject *alloc, Py_ssize_t offset, PyObject **first_out,
                          PyObject **second_out)
{
    if (!PyObject_TypeCheck(alloc, &AllocationType)) {
        PyErr_SetString(PyExc_TypeError, "expected an Allocation");
        return NULL;
    }
    PyObject *first_alloc, *second_alloc;
    if (allocation_split_raw((AllocationObject *)alloc, offset, &first_alloc, &second_alloc) < 0)
        return NULL;
    PyObject *first = derive(self, (PyTypeObject *)first_cls, first_alloc);
    PyObject *second = first == NULL ? NULL : derive(self, (PyTypeObject *)second_cls,
                                                     second_alloc);
    Py_DECREF(first_alloc);
    Py_DECREF(second_alloc);
    if (second == NULL) {
        Py_XDECREF(first);
        return NULL;
    }
    *first_out = first;
    *second_out = second;
    return Py_None; /* success; no reference */
}

static int parse_split_args(const char *name, PyObject *const *args, Py_ssize_t nargs,
                            Py_ssize_t min, Py_ssize_t max, Py_ssize_t *count)
{
    if (nargs < min || nargs > max) {
        PyErr_Format(PyExc_TypeError, "%s: wrong number of arguments", name);
        return -1;
    }
    if (written_kind == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "pointer kinds not set");
        return -1;
    }
    *count = PyLong_AsSsize_t(args[1]);
    if (*count == -1 && PyErr_Occurred())
        return -1;
    return 0;
}

/* value[start:end] of a bytes object; the object itself when that is all of
 * it (a whole write's written part: no copy of the data). */
static PyObject *bytes_part(PyObject *value, Py_ssize_t start, Py_ssize_t end)
{
    if (start == 0 && end == PyBytes_GET_SIZE(value) && PyBytes_CheckExact(value))
        return Py_NewRef(value);
    return PyBytes_FromStringAndSize(PyBytes_AS_STRING(value) + start, end - start);
}

/* _unchanged_split(alloc, count): a syscall used (read) the first `count`
 * bytes of `alloc`: two pointers of this one's kind (a linear pointer's
 * parts are plain readable ones; a written pointer's are written pointers
 * of the two halves of its bytes, or, of a struct, readable ones). */
static PyObject *pointer_unchanged_split(PointerObject *self, PyObject *const *args,
                                         Py_ssize_t nargs)
{
    Py_ssize_t count;
    if (parse_split_args("_unchanged_split(alloc, count)", args, nargs, 2, 2, &count) < 0)
        return NULL;
    PyObject *cls = (PyObject *)Py_TYPE(self);
    PyObject *first, *second;
    int written = PyObject_TypeCheck((PyObject *)self, (PyTypeObject *)written_kind);
    if (written && self->value != NULL && PyBytes_Check(self->value)) {
        Py_ssize_t length = PyBytes_GET_SIZE(self->value);
        Py_ssize_t cut = count < 0 ? 0 : count > length ? length : count;
        PyObject *head = bytes_part(self->value, 0, cut);
        if (head == NULL)
            return NULL;
        PyObject *tail = bytes_part(self->value, cut, length);
        if (tail == NULL) {
            Py_DECREF(head);
            return NULL;
        }
        if (split_to(self, written_kind, written_kind, args[0], count, &first, &second) ==
            NULL) {
            Py_DECREF(head);
            Py_DECREF(tail);
            return NULL;
        }
        ((PointerObject *)first)->value = head;
        ((PointerObject *)second)->value = tail;
        return steal_pair(first, second);
    }
    if (written || cls == linear_kind)
        cls = readable_kind;
    if (split_to(self, cls, cls, args[0], count, &first, &second) == NULL)
        return NULL;
    return steal_pair(first, second);
}

/* _readable_split(alloc, count, task=None): a syscall in `task` filled the
 * first `count` bytes of `alloc`: a readable pointer to them and a plain one
 * to the rest.  For another task whose serializer may differ, the Python
 * method _readable_split_for makes them. */
static PyObject *pointer_readable_split(PointerObject *self, PyObject *const *args,
                                        Py_ssize_t nargs)
{
    Py_ssize_t count;
    if (parse_split_args("_readable_split(alloc, count, task=None)", args, nargs, 2, 3,
                         &count) < 0)
        return NULL;
    if (nargs == 3 && args[2] != Py_None && args[2] != self->task && self->kind != NULL &&
        self->kind != Py_None)
        return PyObject_CallMethod((PyObject *)self, "_readable_split_for", "OOO", args[0],
                                   args[1], args[2]);
    PyObject *first, *second;
    if (split_to(self, readable_kind, plain_kind, args[0], count, &first, &second) == NULL)
        return NULL;
    return steal_pair(first, second);
}

static PyNumberMethods pointer_as_number = {
    .nb_add = pointer_merge,
};

static PyMethodDef pointer_methods[] = {
    {"_unchanged_split", (PyCFunction)(void (*)(void))pointer_unchanged_split, METH_FASTCALL,
     "_unchanged_split(alloc, count): a syscall only read the first count bytes\n"
     "of alloc: pointers of this one's kind to the two parts."},
    {"_readable_split", (PyCFunction)(void (*)(void))pointer_readable_split, METH_FASTCALL,
     "_readable_split(alloc, count, task=None): a syscall in task filled the\n"
     "first count bytes of alloc: a readable pointer to them, a plain one to\n"
     "the rest."},
    {"merge", (PyCFunction)pointer_merge_method, METH_O,
     "merge(other): consume this pointer and `other`, which must start where\n"
     "this one ends; return one pointer to both.  The result is readable only\n"
     "if both were (`a + b` is the same)."},
    {"_derive", (PyCFunction)(void (*)(void))pointer_derive, METH_FASTCALL,
     "_derive(cls, alloc): a pointer of class cls to alloc, with this one's\n"
     "task, space, serializer and kind."},
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
    .tp_as_number = &pointer_as_number,
    .tp_init = (initproc)pointer_init,
    .tp_new = PyType_GenericNew,
};

static PyMethodDef memory_functions[] = {
    {"set_pointer_kinds", (PyCFunction)(void (*)(void))raw_set_pointer_kinds, METH_FASTCALL,
     "set_pointer_kinds(Pointer, ReadablePointer, WrittenPointer, LinearPointer, "
     "UseAfterConsumeError)\n\nThe pointer kinds merge, take and borrow know (pointer.py)."},
    {"take", (PyCFunction)(void (*)(void))raw_take, METH_FASTCALL,
     "take(ptr, task, minimum=0) -> Allocation: consume ptr for a syscall that writes it."},
    {"borrow", (PyCFunction)(void (*)(void))raw_borrow, METH_FASTCALL,
     "borrow(ptr, task, minimum=0) -> Allocation: use readable ptr for a syscall that "
     "reads it."},
    {NULL, NULL, 0, NULL},
};

int rsys_add_memory_types(PyObject *module)
{
    if (PyModule_AddFunctions(module, memory_functions) < 0)
        return -1;
    if (PyType_Ready(&AllocationType) < 0 || PyType_Ready(&PointerBaseType) < 0)
        return -1;
    if (PyModule_AddObjectRef(module, "Allocation", (PyObject *)&AllocationType) < 0 ||
        PyModule_AddObjectRef(module, "PointerBase", (PyObject *)&PointerBaseType) < 0)
        return -1;
    return 0;
}
