/*
 * df_gmr._sites: the spawn hook's per-spawn work, the walk of a report's
 * stacks (frame_ids, gather and line_at, below) and the masking walk's
 * check of what masks to itself (unchanged, last), in C (optional).
 *
 * What it does is what df_gmr/greenlets.py's pure-Python hook does
 * (_hook_greenthread's tracked_init, after eventlet's own lines): read
 * the spawner's frame, reuse the site recorded for that very frame at
 * that very instruction (a loop of spawns), else the recorder's usual
 * record (the same two codes at the same instructions), else call the
 * recorder; then put the greenthread in the registry with its site.
 * The pure-Python hook is the reference: tests/unit/test_sites.py holds
 * the two to the same records.
 *
 * Why C: a spawn from eventlet alone takes ~49,000 instructions; the
 * Python hook's frame read, f_lasti (a new int) and memo cost ~1,200 of
 * them, this ~300.  Built only for CPython >= 3.11 with the GIL (see
 * setup.py); anything else runs the Python hook, as does
 * DF_GMR_PURE_PYTHON=1.
 *
 * Threads: every call runs with the GIL held.  The only Python code run
 * from here is the recorder (a memo miss) and whatever a decref frees;
 * the memo is written whole before anything is let go, so a re-entrant
 * call (a finaliser that spawns) sees an old or a new memo, never a mix.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <frameobject.h>
#include <math.h>

#if PY_VERSION_HEX < 0x030B0000
#error "df_gmr._sites needs CPython 3.11 or newer (PyFrame_GetLasti)"
#endif
#ifdef Py_GIL_DISABLED
#error "df_gmr._sites relies on the GIL (its memo); setup.py skips it here"
#endif

/* CPython 3.11's interpreter frames (greenlet reads them the same way):
 * the spawn hook finds the spawner's frame object without calling
 * sys._getframe when the frame has one already (see made_frame).  Other
 * versions lay their frames out otherwise: they call sys._getframe. */
#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030C0000
#  define FRAME_WALK 1
#  define Py_BUILD_CORE 1
#  include "internal/pycore_frame.h"
#  undef Py_BUILD_CORE
#endif

/*
 * Registry: the spawn hook's registry (df_gmr.greenlets._alive) when this
 * module is built, in place of a dict: greenlet -> site, keyed by
 * identity, in the order put.  Why not a dict: the registry churns at the
 * rate of spawns (an entry put at each spawn, taken out at each exit),
 * and a dict that churns pays for it: its entries are append-only, a
 * batch of exits leaves them all dummies, and the next spawn rebuilds it
 * at its smallest size, to grow again (10,000 spawns: ~11 resizes); its
 * put and pop were ~580 of the hooks' ~890 instructions a spawn.
 *
 * The same shape as a dict's, without that: entries in the order put
 * (so copies come in that order, as a dict's: a report lists
 * greenthreads oldest first), found through slots of entry positions
 * (open addressing on the pointer, linear probing, at most half full;
 * taking one out shifts its run back, so slots never hold dummies).
 * When the entries run out: if half of them are taken out, the live ones
 * move up in place, else the table doubles; once none is left, it starts
 * again at the top, with no move at all (a batch of spawns that all
 * ended).  It halves when it was never half full over a window of twice
 * its size in puts and takes: a churn of batches keeps the size that
 * fits a batch, and a service that settles lower gives the memory back
 * in a few halvings.
 *
 * Threads and re-entrancy: every call runs with the GIL held; the table
 * is whole again before any reference is let go (a decref may free a
 * greenlet, whose finaliser may spawn, i.e. put an entry), and the calls
 * that hand out its contents copy them out first (nothing else runs in
 * between), then build what they return.
 */
typedef struct {
    PyObject *key;    /* a greenlet, strong; NULL: taken out */
    PyObject *value;  /* its site, strong */
} Entry;

typedef struct {
    PyObject_HEAD
    Entry *entries;       /* capacity of them, the first end ever used */
    Py_ssize_t *slots;    /* 2 * capacity: an entry's position, or -1 */
    Py_ssize_t capacity;  /* a power of two, >= REGISTRY_MIN */
    Py_ssize_t end;
    Py_ssize_t used;      /* live entries */
    Py_ssize_t since;     /* puts and takes in this window */
    Py_ssize_t peak;      /* the most live entries in this window */
} Registry;

#define REGISTRY_MIN 32

static inline size_t
home_of(PyObject *key, size_t mask)
{
    /* Objects are 16-byte aligned; Fibonacci hashing spreads the rest. */
    uint64_t bits = (uint64_t)(uintptr_t)key >> 4;
    return (size_t)((bits * 0x9E3779B97F4A7C15ULL) >> 17) & mask;
}

/* The slot of key, or the empty slot ending its run. */
static inline size_t
find(const Registry *self, PyObject *key)
{
    size_t mask = 2 * (size_t)self->capacity - 1;
    size_t slot = home_of(key, mask);
    for (;;) {
        Py_ssize_t at = self->slots[slot];
        if (at < 0 || self->entries[at].key == key) {
            return slot;
        }
        slot = (slot + 1) & mask;
    }
}

/* New arrays of capacity entries holding the live ones, in order, and
 * their slots.  -1 with no error set when it cannot allocate: the old
 * arrays stay. */
static int
rebuild(Registry *self, Py_ssize_t capacity)
{
    Entry *entries = PyMem_Calloc((size_t)capacity, sizeof(Entry));
    Py_ssize_t *slots = PyMem_Malloc(2 * (size_t)capacity
                                     * sizeof(Py_ssize_t));
    if (entries == NULL || slots == NULL) {
        PyMem_Free(entries);
        PyMem_Free(slots);
        return -1;
    }
    memset(slots, 0xff, 2 * (size_t)capacity * sizeof(Py_ssize_t));
    Entry *old = self->entries;
    Py_ssize_t old_end = self->end;
    PyMem_Free(self->slots);
    self->entries = entries;
    self->slots = slots;
    self->capacity = capacity;
    self->end = 0;
    for (Py_ssize_t at = 0; at < old_end; at++) {
        if (old[at].key != NULL) {
            self->slots[find(self, old[at].key)] = self->end;
            self->entries[self->end++] = old[at];
        }
    }
    PyMem_Free(old);
    self->since = 0;
    self->peak = self->used;
    return 0;
}

static int
ready(Registry *self)
{
    if (self->entries == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Registry was not initialised");
        return -1;
    }
    return 0;
}

/* Put key -> value (new references taken here).  0, or -1 with an
 * error set. */
static int
registry_put(Registry *self, PyObject *key, PyObject *value)
{
    if (ready(self) < 0) {
        return -1;
    }
    size_t slot = find(self, key);
    if (self->slots[slot] >= 0) {
        Entry *entry = &self->entries[self->slots[slot]];
        PyObject *old = entry->value;
        entry->value = Py_NewRef(value);
        Py_DECREF(old);
        return 0;
    }
    if (self->end == self->capacity) {
        Py_ssize_t capacity = self->capacity;
        if (2 * (self->used + 1) > capacity) {
            capacity *= 2;
        }
        if (rebuild(self, capacity) < 0) {
            PyErr_NoMemory();
            return -1;
        }
        slot = find(self, key);
    }
    self->slots[slot] = self->end;
    self->entries[self->end].key = Py_NewRef(key);
    self->entries[self->end].value = Py_NewRef(value);
    self->end++;
    self->used++;
    self->since++;
    if (self->used > self->peak) {
        self->peak = self->used;
    }
    return 0;
}

/* Take key's entry out; its references are handed to the caller
 * (*key_out, *value_out), or 0 when key is not there. */
static int
registry_take(Registry *self, PyObject *key, PyObject **key_out,
              PyObject **value_out)
{
    if (self->entries == NULL) {
        return 0;
    }
    size_t hole = find(self, key);
    Py_ssize_t at = self->slots[hole];
    if (at < 0) {
        return 0;
    }
    *key_out = self->entries[at].key;
    *value_out = self->entries[at].value;
    self->entries[at].key = NULL;
    self->entries[at].value = NULL;
    /* Shift the rest of the run back over the hole: a slot moves when
     * its home is not between the hole and where it is (cyclically), so
     * every key stays reachable from its home. */
    size_t mask = 2 * (size_t)self->capacity - 1;
    size_t next = (hole + 1) & mask;
    while (self->slots[next] >= 0) {
        size_t home = home_of(self->entries[self->slots[next]].key, mask);
        if (((next - home) & mask) >= ((next - hole) & mask)) {
            self->slots[hole] = self->slots[next];
            hole = next;
        }
        next = (next + 1) & mask;
    }
    self->slots[hole] = -1;
    self->used--;
    self->since++;
    if (self->used == 0) {
        self->end = 0;  /* all taken out: start again at the top */
    }
    if (self->since >= 2 * self->capacity) {
        /* A window of twice its size in puts and takes: halved if it
         * never was half full meanwhile (the peak then fits). */
        if (self->capacity <= REGISTRY_MIN || 2 * self->peak >= self->capacity
                || rebuild(self, self->capacity / 2) < 0) {
            self->since = 0;
            self->peak = self->used;
        }
    }
    return 1;
}

/* Copy the live entries out (new references), in the order put: *count
 * of them, in a block the caller frees; NULL with an error set when it
 * cannot allocate. */
static Entry *
registry_entries(Registry *self, Py_ssize_t *count)
{
    Entry *entries = PyMem_Malloc(
        (size_t)(self->used > 0 ? self->used : 1) * sizeof(Entry));
    if (entries == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    Py_ssize_t found = 0;
    for (Py_ssize_t at = 0; at < self->end; at++) {
        Entry entry = self->entries[at];
        if (entry.key != NULL) {
            entries[found].key = Py_NewRef(entry.key);
            entries[found].value = Py_NewRef(entry.value);
            found++;
        }
    }
    *count = found;
    return entries;
}

static void
release(Entry *entries, Py_ssize_t from, Py_ssize_t count)
{
    for (Py_ssize_t index = from; index < count; index++) {
        Py_DECREF(entries[index].key);
        Py_DECREF(entries[index].value);
    }
    PyMem_Free(entries);
}

static int
Registry_init(Registry *self, PyObject *args, PyObject *kwargs)
{
    if ((kwargs != NULL && PyDict_GET_SIZE(kwargs))
            || PyTuple_GET_SIZE(args)) {
        PyErr_SetString(PyExc_TypeError, "Registry() takes no arguments");
        return -1;
    }
    if (self->entries != NULL) {
        return 0;
    }
    if (rebuild(self, REGISTRY_MIN) < 0) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

static int
Registry_traverse(Registry *self, visitproc visit, void *arg)
{
    for (Py_ssize_t at = 0; at < self->end; at++) {
        if (self->entries[at].key != NULL) {
            Py_VISIT(self->entries[at].key);
            Py_VISIT(self->entries[at].value);
        }
    }
    return 0;
}

/* Let go of the first end entries of a block no table uses any more,
 * and of the block. */
static void
let_go(Entry *entries, Py_ssize_t end)
{
    for (Py_ssize_t at = 0; at < end; at++) {
        Py_XDECREF(entries[at].key);
        Py_XDECREF(entries[at].value);
    }
    PyMem_Free(entries);
}

/* Empty the table, then let go of what it held (a finaliser run meanwhile
 * finds a new, empty table).  -1 when there is no memory for that table:
 * it is left as it was (the collector tries again later). */
static int
Registry_clear(Registry *self)
{
    if (self->entries == NULL || self->used == 0) {
        return 0;
    }
    Entry *entries = PyMem_Calloc(REGISTRY_MIN, sizeof(Entry));
    Py_ssize_t *slots = PyMem_Malloc(2 * REGISTRY_MIN * sizeof(Py_ssize_t));
    if (entries == NULL || slots == NULL) {
        PyMem_Free(entries);
        PyMem_Free(slots);
        return -1;
    }
    memset(slots, 0xff, 2 * REGISTRY_MIN * sizeof(Py_ssize_t));
    Entry *old = self->entries;
    Py_ssize_t old_end = self->end;
    PyMem_Free(self->slots);
    self->entries = entries;
    self->slots = slots;
    self->capacity = REGISTRY_MIN;
    self->end = 0;
    self->used = 0;
    self->since = 0;
    self->peak = 0;
    let_go(old, old_end);
    return 0;
}

static void
Registry_dealloc(Registry *self)
{
    PyObject_GC_UnTrack(self);
    /* Nothing can reach it any more: let go in place. */
    Entry *old = self->entries;
    Py_ssize_t old_end = self->end;
    self->entries = NULL;
    self->end = 0;
    self->used = 0;
    let_go(old, old_end);
    PyMem_Free(self->slots);
    self->slots = NULL;
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static Py_ssize_t
Registry_length(Registry *self)
{
    return self->used;
}

/* key's entry, or NULL. */
static Entry *
entry_of(Registry *self, PyObject *key)
{
    if (self->entries == NULL) {
        return NULL;
    }
    Py_ssize_t at = self->slots[find(self, key)];
    return at < 0 ? NULL : &self->entries[at];
}

static PyObject *
Registry_subscript(Registry *self, PyObject *key)
{
    Entry *entry = entry_of(self, key);
    if (entry == NULL) {
        PyErr_SetObject(PyExc_KeyError, key);
        return NULL;
    }
    return Py_NewRef(entry->value);
}

static int
Registry_ass_subscript(Registry *self, PyObject *key, PyObject *value)
{
    if (value != NULL) {
        return registry_put(self, key, value);
    }
    PyObject *old_key, *old_value;
    if (!registry_take(self, key, &old_key, &old_value)) {
        PyErr_SetObject(PyExc_KeyError, key);
        return -1;
    }
    Py_DECREF(old_key);
    Py_DECREF(old_value);
    return 0;
}

static int
Registry_contains(Registry *self, PyObject *key)
{
    return entry_of(self, key) != NULL;
}

PyDoc_STRVAR(registry_get_doc,
"get(greenlet, default=None)\n\nReturn greenlet's site, or default.");

static PyObject *
Registry_get(Registry *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 1 || nargs > 2) {
        PyErr_Format(PyExc_TypeError,
                     "get() takes 1 or 2 arguments (%zd given)", nargs);
        return NULL;
    }
    Entry *entry = entry_of(self, args[0]);
    if (entry != NULL) {
        return Py_NewRef(entry->value);
    }
    return Py_NewRef(nargs > 1 ? args[1] : Py_None);
}

PyDoc_STRVAR(registry_pop_doc,
"pop(greenlet[, default])\n\n"
"Take greenlet out; return its site, or default (KeyError without).");

static PyObject *
Registry_pop(Registry *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 1 || nargs > 2) {
        PyErr_Format(PyExc_TypeError,
                     "pop() takes 1 or 2 arguments (%zd given)", nargs);
        return NULL;
    }
    PyObject *key, *value;
    if (!registry_take(self, args[0], &key, &value)) {
        if (nargs > 1) {
            return Py_NewRef(args[1]);
        }
        PyErr_SetObject(PyExc_KeyError, args[0]);
        return NULL;
    }
    Py_DECREF(key);
    return value;
}

PyDoc_STRVAR(registry_keys_doc, "keys()\n\nReturn a list of the greenlets.");

static PyObject *
Registry_keys(Registry *self, PyObject *Py_UNUSED(unused))
{
    Py_ssize_t count;
    Entry *entries = registry_entries(self, &count);
    if (entries == NULL) {
        return NULL;
    }
    PyObject *keys = PyList_New(count);
    if (keys == NULL) {
        release(entries, 0, count);
        return NULL;
    }
    for (Py_ssize_t index = 0; index < count; index++) {
        PyList_SET_ITEM(keys, index, entries[index].key);  /* stolen */
        Py_DECREF(entries[index].value);
    }
    PyMem_Free(entries);
    return keys;
}

PyDoc_STRVAR(registry_items_doc,
"items()\n\nReturn a list of (greenlet, site) pairs.");

static PyObject *
Registry_items(Registry *self, PyObject *Py_UNUSED(unused))
{
    Py_ssize_t count;
    Entry *entries = registry_entries(self, &count);
    if (entries == NULL) {
        return NULL;
    }
    PyObject *items = PyList_New(count);
    if (items == NULL) {
        release(entries, 0, count);
        return NULL;
    }
    for (Py_ssize_t index = 0; index < count; index++) {
        PyObject *pair = PyTuple_New(2);
        if (pair == NULL) {
            release(entries, index, count);
            Py_DECREF(items);
            return NULL;
        }
        PyTuple_SET_ITEM(pair, 0, entries[index].key);  /* stolen */
        PyTuple_SET_ITEM(pair, 1, entries[index].value);
        PyList_SET_ITEM(items, index, pair);
    }
    PyMem_Free(entries);
    return items;
}

static inline int
identity_hashed(PyObject *key)
{
    return Py_TYPE(key)->tp_hash == PyBaseObject_Type.tp_hash;
}

/* Whether every key, and every key of first (or NULL), hashes by
 * identity (as greenlets do): then putting them in one dict runs no
 * Python code (no __hash__, and equal hashes only for the same object,
 * so no __eq__). */
static int
hashed_by_identity(Registry *self, PyObject *first)
{
    for (Py_ssize_t at = 0; at < self->end; at++) {
        PyObject *key = self->entries[at].key;
        if (key != NULL && !identity_hashed(key)) {
            return 0;
        }
    }
    Py_ssize_t position = 0;
    PyObject *key, *value;
    while (first != NULL && PyDict_Next(first, &position, &key, &value)) {
        if (!identity_hashed(key)) {
            return 0;
        }
    }
    return 1;
}

PyDoc_STRVAR(registry_copy_doc,
"copy(first=None)\n\n"
"Return a dict of first's items (a dict), then every (greenlet, site)\n"
"in the order put: one copy, taken at once (no Python code runs while\n"
"the registry is read), in a dict made at its size.");

static PyObject *
Registry_copy(Registry *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs > 1) {
        PyErr_Format(PyExc_TypeError,
                     "copy() takes at most 1 argument (%zd given)", nargs);
        return NULL;
    }
    PyObject *first = nargs && args[0] != Py_None ? args[0] : NULL;
    if (first != NULL && !PyDict_CheckExact(first)) {
        PyErr_SetString(PyExc_TypeError, "copy() needs a dict or None");
        return NULL;
    }
    Py_ssize_t size = self->used + (first ? PyDict_GET_SIZE(first) : 0);
#if PY_VERSION_HEX < 0x030D0000
    /* Made at its size: one allocation where growing it made ~17 at
     * 100,000 entries, each touching new pages (private after 3.12). */
    PyObject *found = _PyDict_NewPresized(size);
#else
    (void)size;
    PyObject *found = PyDict_New();
#endif
    if (found == NULL) {
        return NULL;
    }
    if (first != NULL && PyDict_Update(found, first) < 0) {
        Py_DECREF(found);
        return NULL;
    }
    if (self->entries == NULL) {
        return found;
    }
    if (hashed_by_identity(self, first)) {
        /* Read in place: putting keys that hash by identity runs no
         * Python code, so the registry cannot change meanwhile (a
         * dict's growth allocates no object the collector tracks). */
        for (Py_ssize_t at = 0; at < self->end; at++) {
            Entry entry = self->entries[at];
            if (entry.key != NULL
                    && PyDict_SetItem(found, entry.key, entry.value) < 0) {
                Py_DECREF(found);
                return NULL;
            }
        }
        return found;
    }
    /* A key's own __hash__ may run Python code: copied out first. */
    Py_ssize_t count;
    Entry *entries = registry_entries(self, &count);
    if (entries == NULL) {
        Py_DECREF(found);
        return NULL;
    }
    for (Py_ssize_t index = 0; index < count; index++) {
        if (PyDict_SetItem(found, entries[index].key,
                           entries[index].value) < 0) {
            release(entries, index, count);
            Py_DECREF(found);
            return NULL;
        }
        Py_DECREF(entries[index].key);
        Py_DECREF(entries[index].value);
    }
    PyMem_Free(entries);
    return found;
}

PyDoc_STRVAR(registry_clear_doc, "clear()\n\nTake every entry out.");

static PyObject *
Registry_clear_method(Registry *self, PyObject *Py_UNUSED(unused))
{
    if (Registry_clear(self) < 0) {
        return PyErr_NoMemory();
    }
    Py_RETURN_NONE;
}

PyDoc_STRVAR(registry_sizeof_doc, "__sizeof__()\n\nSize in bytes.");

static PyObject *
Registry_sizeof(Registry *self, PyObject *Py_UNUSED(unused))
{
    return PyLong_FromSsize_t(
        (Py_ssize_t)sizeof(Registry) + self->capacity
        * (Py_ssize_t)(sizeof(Entry) + 2 * sizeof(Py_ssize_t)));
}

static PyObject *
Registry_iter(Registry *self)
{
    PyObject *keys = Registry_keys(self, NULL);
    if (keys == NULL) {
        return NULL;
    }
    PyObject *iterator = PyObject_GetIter(keys);
    Py_DECREF(keys);
    return iterator;
}

static PyMappingMethods Registry_as_mapping = {
    .mp_length = (lenfunc)Registry_length,
    .mp_subscript = (binaryfunc)Registry_subscript,
    .mp_ass_subscript = (objobjargproc)Registry_ass_subscript,
};

static PySequenceMethods Registry_as_sequence = {
    .sq_contains = (objobjproc)Registry_contains,
};

static PyMethodDef Registry_methods[] = {
    {"get", (PyCFunction)(void (*)(void))Registry_get, METH_FASTCALL,
     registry_get_doc},
    {"pop", (PyCFunction)(void (*)(void))Registry_pop, METH_FASTCALL,
     registry_pop_doc},
    {"keys", (PyCFunction)Registry_keys, METH_NOARGS, registry_keys_doc},
    {"items", (PyCFunction)Registry_items, METH_NOARGS, registry_items_doc},
    {"copy", (PyCFunction)(void (*)(void))Registry_copy, METH_FASTCALL,
     registry_copy_doc},
    {"clear", (PyCFunction)Registry_clear_method, METH_NOARGS,
     registry_clear_doc},
    {"__sizeof__", (PyCFunction)Registry_sizeof, METH_NOARGS,
     registry_sizeof_doc},
    {NULL, NULL, 0, NULL}
};

PyDoc_STRVAR(Registry_doc,
"Registry()\n\n"
"The spawn hook's registry: greenlet -> site, by identity, as a dict\n"
"would hold them (get, pop, keys, items, copy, len, in, [], del), but\n"
"cheap to churn (see df_gmr/_sites.c).");

static PyTypeObject RegistryType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "df_gmr._sites.Registry",
    .tp_basicsize = sizeof(Registry),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = Registry_doc,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Registry_init,
    .tp_traverse = (traverseproc)Registry_traverse,
    .tp_clear = (inquiry)Registry_clear,
    .tp_dealloc = (destructor)Registry_dealloc,
    .tp_methods = Registry_methods,
    .tp_as_mapping = &Registry_as_mapping,
    .tp_as_sequence = &Registry_as_sequence,
    .tp_iter = (getiterfunc)Registry_iter,
};

typedef struct {
    PyObject_HEAD
    PyObject *alive;     /* a Registry or a dict: greenthread -> site */
    PyObject *recorder;  /* a df_gmr.callers.Callers */
    PyObject *record;    /* recorder.record */
    PyObject *getframe;  /* sys._getframe */
    PyObject *depth;     /* the spawner's depth, from the caller's frame */
    int depth_value;     /* the same, as a C int */
    /* The memo: the last spawn's frame (a strong reference, let go by
     * forget_returned once only the memo holds it), its f_lasti, and
     * the site recorded for them. */
    PyObject *frame;
    int lasti;
    PyObject *site;
} Sites;

static PyObject *usual_name;  /* "usual", interned */
/* gather's attribute names and kinds, interned (greens.py's literals). */
static PyObject *gr_frame_name, *parent_name, *greenlet_name,
    *greenthread_name;

/* The recorder's usual record when frame (at lasti) matches it: a new
 * reference, or NULL (no error set) when it does not. */
static PyObject *
usual_site(Sites *self, PyFrameObject *frame, int lasti)
{
    PyObject *usual = PyObject_GetAttr(self->recorder, usual_name);
    if (usual == NULL) {
        PyErr_Clear();
        return NULL;
    }
    if (!PyTuple_CheckExact(usual) || PyTuple_GET_SIZE(usual) != 4) {
        Py_DECREF(usual);
        return NULL;
    }
    PyFrameObject *back = PyFrame_GetBack(frame);
    int same = 0;
    if (back != NULL) {
        PyCodeObject *code = PyFrame_GetCode(frame);
        PyCodeObject *back_code = PyFrame_GetCode(back);
        same = (PyObject *)code == PyTuple_GET_ITEM(usual, 0)
            && (PyObject *)back_code == PyTuple_GET_ITEM(usual, 2)
            && PyLong_CheckExact(PyTuple_GET_ITEM(usual, 1))
            && PyLong_CheckExact(PyTuple_GET_ITEM(usual, 3))
            && PyLong_AsLong(PyTuple_GET_ITEM(usual, 1)) == lasti
            && PyLong_AsLong(PyTuple_GET_ITEM(usual, 3))
                == PyFrame_GetLasti(back);
        if (PyErr_Occurred()) {  /* an offset beyond a C long */
            PyErr_Clear();
            same = 0;
        }
        Py_DECREF(code);
        Py_DECREF(back_code);
        Py_DECREF(back);
    }
    if (!same) {
        Py_DECREF(usual);
        return NULL;
    }
    return usual;
}

static inline int
put(Sites *self, PyObject *green, PyObject *site)
{
    if (Py_IS_TYPE(self->alive, &RegistryType)) {
        return registry_put((Registry *)self->alive, green, site);
    }
    return PyDict_SetItem(self->alive, green, site);
}

/* The frame object depth frames out from the running one, as
 * sys._getframe(depth) counts them (frames not started yet skipped), if
 * it has one already: a new reference, else NULL (no error set).  In a
 * loop of spawns it has (the memo holds it): this spares the call of
 * sys._getframe, its argument's conversion and its audit event, ~200 of
 * a spawn's ~50,000 instructions.  A frame without an object yet goes
 * through sys._getframe, which makes it (and raises its audit event). */
static PyObject *
made_frame(int depth)
{
#ifdef FRAME_WALK
    _PyInterpreterFrame *frame = PyThreadState_GET()->cframe->current_frame;
    while (frame != NULL && depth > 0) {
        frame = frame->previous;
        if (frame != NULL && !_PyFrame_IsIncomplete(frame)) {
            depth--;
        }
    }
    if (frame != NULL && frame->frame_obj != NULL) {
        return Py_NewRef((PyObject *)frame->frame_obj);
    }
#else
    (void)depth;
#endif
    return NULL;
}

PyDoc_STRVAR(note_doc,
"note(greenthread)\n\n"
"Put greenthread in the registry with its spawner's site.  Called as\n"
"the last line of the hooked GreenThread.__init__.");

static PyObject *
Sites_note(Sites *self, PyObject *green)
{
    if (self->alive == NULL) {  /* made by __new__ alone */
        PyErr_SetString(PyExc_RuntimeError, "Sites was not initialised");
        return NULL;
    }
    PyObject *frame = made_frame(self->depth_value);
    if (frame == NULL) {
        frame = PyObject_Vectorcall(self->getframe, &self->depth, 1, NULL);
    }
    if (frame == NULL) {
        /* No spawner: spawn() is the outermost frame of a greenlet
         * (spawn_n(spawn, f)). */
        if (!PyErr_ExceptionMatches(PyExc_ValueError)) {
            return NULL;
        }
        PyErr_Clear();
        if (put(self, green, Py_None) < 0) {
            return NULL;
        }
        Py_RETURN_NONE;
    }
    int lasti = PyFrame_GetLasti((PyFrameObject *)frame);
    if (frame == self->frame && lasti == self->lasti) {
        /* The very frame object at the same instruction: the same
         * activation (a frame object held is never reused). */
        Py_DECREF(frame);
        if (put(self, green, self->site) < 0) {
            return NULL;
        }
        Py_RETURN_NONE;
    }
    PyObject *site = usual_site(self, (PyFrameObject *)frame, lasti);
    if (site == NULL) {
        site = PyObject_CallOneArg(self->record, frame);
        if (site == NULL) {
            Py_DECREF(frame);
            return NULL;
        }
    }
    if (put(self, green, site) < 0) {
        Py_DECREF(frame);
        Py_DECREF(site);
        return NULL;
    }
    /* A generator's or coroutine's frame is resumed by any caller, in
     * any greenlet: never memoised (df_gmr.callers.RESUMABLE). */
    PyCodeObject *code = PyFrame_GetCode((PyFrameObject *)frame);
    int resumable = code->co_flags & (CO_GENERATOR | CO_COROUTINE
                                      | CO_ASYNC_GENERATOR
                                      | CO_ITERABLE_COROUTINE);
    Py_DECREF(code);
    if (resumable) {
        Py_DECREF(frame);
        Py_DECREF(site);
        Py_RETURN_NONE;
    }
    PyObject *old_frame = self->frame;
    PyObject *old_site = self->site;
    self->frame = frame;
    self->lasti = lasti;
    self->site = site;
    Py_XDECREF(old_frame);
    Py_XDECREF(old_site);
    Py_RETURN_NONE;
}

static void
forget(Sites *self)
{
    PyObject *old_frame = self->frame;
    PyObject *old_site = self->site;
    self->frame = NULL;
    self->lasti = -1;
    self->site = NULL;
    Py_XDECREF(old_frame);
    Py_XDECREF(old_site);
}

PyDoc_STRVAR(forget_returned_doc,
"forget_returned()\n\n"
"Let go of the memo's frame if only the memo holds it (it returned).");

static PyObject *
Sites_forget_returned(Sites *self, PyObject *Py_UNUSED(unused))
{
    /* A running frame is also held by its interpreter frame. */
    if (self->frame != NULL && Py_REFCNT(self->frame) <= 1) {
        forget(self);
    }
    Py_RETURN_NONE;
}

PyDoc_STRVAR(forget_doc,
"forget()\n\n"
"Let go of the memo (in a forked child: its thread may be gone).");

static PyObject *
Sites_forget(Sites *self, PyObject *Py_UNUSED(unused))
{
    forget(self);
    Py_RETURN_NONE;
}

PyDoc_STRVAR(holds_doc, "holds()\n\nSay whether the memo holds a frame.");

static PyObject *
Sites_holds(Sites *self, PyObject *Py_UNUSED(unused))
{
    return PyBool_FromLong(self->frame != NULL);
}

static int
Sites_init(Sites *self, PyObject *args, PyObject *kwargs)
{
    static char *names[] = {"alive", "recorder", "depth", NULL};
    PyObject *alive, *recorder, *depth;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOO!:Sites", names,
                                     &alive, &recorder,
                                     &PyLong_Type, &depth)) {
        return -1;
    }
    if (!Py_IS_TYPE(alive, &RegistryType) && !PyDict_CheckExact(alive)) {
        PyErr_SetString(PyExc_TypeError,
                        "Sites() needs a Registry or a dict for alive");
        return -1;
    }
    PyObject *record = PyObject_GetAttrString(recorder, "record");
    if (record == NULL) {
        return -1;
    }
    PyObject *getframe = PySys_GetObject("_getframe");  /* borrowed */
    if (getframe == NULL) {
        Py_DECREF(record);
        PyErr_SetString(PyExc_RuntimeError, "sys._getframe is missing");
        return -1;
    }
    Py_XSETREF(self->alive, Py_NewRef(alive));
    Py_XSETREF(self->recorder, Py_NewRef(recorder));
    Py_XSETREF(self->record, record);
    Py_XSETREF(self->getframe, Py_NewRef(getframe));
    long depth_value = PyLong_AsLong(depth);
    if (depth_value == -1 && PyErr_Occurred()) {
        Py_DECREF(record);
        return -1;
    }
    if (depth_value < 0 || depth_value > 1000) {
        Py_DECREF(record);
        PyErr_SetString(PyExc_ValueError, "depth must be 0 to 1000");
        return -1;
    }
    Py_XSETREF(self->depth, Py_NewRef(depth));
    self->depth_value = (int)depth_value;
    forget(self);
    return 0;
}

static int
Sites_traverse(Sites *self, visitproc visit, void *arg)
{
    Py_VISIT(self->alive);
    Py_VISIT(self->recorder);
    Py_VISIT(self->record);
    Py_VISIT(self->getframe);
    Py_VISIT(self->frame);
    Py_VISIT(self->site);
    return 0;
}

static int
Sites_clear(Sites *self)
{
    Py_CLEAR(self->alive);
    Py_CLEAR(self->recorder);
    Py_CLEAR(self->record);
    Py_CLEAR(self->getframe);
    Py_CLEAR(self->depth);
    Py_CLEAR(self->frame);
    Py_CLEAR(self->site);
    return 0;
}

static void
Sites_dealloc(Sites *self)
{
    PyObject_GC_UnTrack(self);
    Sites_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef Sites_methods[] = {
    {"note", (PyCFunction)Sites_note, METH_O, note_doc},
    {"forget_returned", (PyCFunction)Sites_forget_returned, METH_NOARGS,
     forget_returned_doc},
    {"forget", (PyCFunction)Sites_forget, METH_NOARGS, forget_doc},
    {"holds", (PyCFunction)Sites_holds, METH_NOARGS, holds_doc},
    {NULL, NULL, 0, NULL}
};

PyDoc_STRVAR(Sites_doc,
"Sites(alive, recorder, depth)\n\n"
"The spawn hook's registry entry and site, for one hook: alive is the\n"
"registry (a Registry or a dict: greenthread -> site), recorder a\n"
"df_gmr.callers.Callers, depth how far the spawner's frame is from\n"
"note()'s caller.");

static PyTypeObject SitesType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "df_gmr._sites.Sites",
    .tp_basicsize = sizeof(Sites),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = Sites_doc,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Sites_init,
    .tp_traverse = (traverseproc)Sites_traverse,
    .tp_clear = (inquiry)Sites_clear,
    .tp_dealloc = (destructor)Sites_dealloc,
    .tp_methods = Sites_methods,
};

PyDoc_STRVAR(frame_ids_doc,
"frame_ids(frame, limit=200, memo=None)\n\n"
"Return what df_gmr.stacks.frame_ids returns: (id(code), f_lasti, ...)\n"
"of the chain of frame (None: an empty tuple), innermost first, at most\n"
"limit frames.  With memo (a dict kept for one walk of many stacks), a\n"
"stack equal to one returned before gets that very tuple back.");

/* GCC cannot tell that only the first `size` positions are read, and
 * warns that the buffer "may be used uninitialized" in frame_ids. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

/* One frame of a stack being read: its code's address and f_lasti. */
typedef struct {
    void *code;
    int lasti;
} Position;

/* The hash a memo files a stack under (tuple's own mixing, on the raw
 * values: nothing is made to compute it). */
static Py_uhash_t
positions_hash(const Position *positions, Py_ssize_t size)
{
    Py_uhash_t hash = 0x27D4EB2F165667C5ULL + (Py_uhash_t)size;
    for (Py_ssize_t index = 0; index < size; index++) {
        hash = (hash ^ (Py_uhash_t)(uintptr_t)positions[index].code)
            * 0x9E3779B97F4A7C15ULL;
        hash = (hash ^ (Py_uhash_t)(unsigned int)positions[index].lasti)
            * 0x9E3779B97F4A7C15ULL;
        hash ^= hash >> 29;
    }
    return hash;
}

/* Whether found (a memo's tuple) holds exactly these positions. */
static int
same_positions(PyObject *found, const Position *positions, Py_ssize_t size)
{
    if (!PyTuple_CheckExact(found) || PyTuple_GET_SIZE(found) != 2 * size) {
        return 0;
    }
    for (Py_ssize_t index = 0; index < size; index++) {
        PyObject *code = PyTuple_GET_ITEM(found, 2 * index);
        PyObject *lasti = PyTuple_GET_ITEM(found, 2 * index + 1);
        if (!PyLong_CheckExact(code) || !PyLong_CheckExact(lasti)
                || PyLong_AsVoidPtr(code) != positions[index].code
                || PyLong_AsLong(lasti) != positions[index].lasti) {
            PyErr_Clear();  /* an int beyond a pointer: not these */
            return 0;
        }
    }
    return 1;
}

/* The tuple (id(code), f_lasti, ...) of these positions: a new reference. */
static PyObject *
positions_tuple(const Position *positions, Py_ssize_t size)
{
    PyObject *found = PyTuple_New(2 * size);
    if (found == NULL) {
        return NULL;
    }
    for (Py_ssize_t index = 0; index < size; index++) {
        PyObject *code = PyLong_FromVoidPtr(positions[index].code);
        if (code == NULL) {
            Py_DECREF(found);
            return NULL;
        }
        PyTuple_SET_ITEM(found, 2 * index, code);
        PyObject *lasti = PyLong_FromLong(positions[index].lasti);
        if (lasti == NULL) {
            Py_DECREF(found);
            return NULL;
        }
        PyTuple_SET_ITEM(found, 2 * index + 1, lasti);
    }
    return found;
}

/* The walk of every stack of a report (100,000 greenlets and more): in
 * Python each frame costs four attribute reads, f_code's an audit event
 * ("object.__getattr__"), and two appends; here the same reads through
 * the C API that those attributes use (PyFrame_GetCode, PyFrame_GetLasti,
 * PyFrame_GetBack), and no audit event.  The positions are read into a
 * buffer first and made ints only for a stack not seen before (with a
 * memo): most greenlets of a service share a few stacks, and the two ints
 * per frame were most of the walk's time.
 *
 * The GIL is held throughout: a live thread's stack is read at one
 * moment.  A code's address is kept without a reference: it stays alive
 * through its frame, which its greenlet or thread keeps (the same bargain
 * as id(code) in the Python walk), and is only compared here.  start is
 * a frame, or None (no frame: an empty key). */
static PyObject *
stack_key(PyObject *start, Py_ssize_t limit, PyObject *memo)
{
    /* Most stacks fit the first buffer; a deeper one grows on the heap. */
    Position local[64];
    Position *positions = local;
    Py_ssize_t size = 0, room = 64;
    PyObject *found = NULL;
    PyFrameObject *frame = start == Py_None ? NULL
        : (PyFrameObject *)Py_NewRef(start);
    while (frame != NULL && limit > 0) {
        if (size == room) {
            Position *grown = PyMem_Malloc(2 * room * sizeof(Position));
            if (grown == NULL) {
                PyErr_NoMemory();
                goto done;
            }
            memcpy(grown, positions, size * sizeof(Position));
            if (positions != local) {
                PyMem_Free(positions);
            }
            positions = grown;
            room *= 2;
        }
        PyCodeObject *code = PyFrame_GetCode(frame);
        positions[size].code = code;
        Py_DECREF(code);
        positions[size].lasti = PyFrame_GetLasti(frame);
        size++;
        /* A new reference, or NULL: the outermost frame, or a frame
         * object that could not be made (an error is then set). */
        PyFrameObject *back = PyFrame_GetBack(frame);
        Py_DECREF(frame);
        frame = back;
        if (frame == NULL && PyErr_Occurred()) {
            goto done;
        }
        limit--;
    }
    if (memo == NULL) {
        found = positions_tuple(positions, size);
        goto done;
    }
    PyObject *hash = PyLong_FromSize_t(positions_hash(positions, size));
    if (hash == NULL) {
        goto done;
    }
    PyObject *known = PyDict_GetItemWithError(memo, hash);  /* borrowed */
    if (known != NULL && same_positions(known, positions, size)) {
        found = Py_NewRef(known);
    }
    else if (!PyErr_Occurred()) {
        found = positions_tuple(positions, size);
        /* The first stack of a hash is kept; another of the same hash (a
         * collision) is returned as it is, never kept. */
        if (found != NULL && known == NULL
                && PyDict_SetItem(memo, hash, found) < 0) {
            Py_CLEAR(found);
        }
    }
    Py_DECREF(hash);
done:
    Py_XDECREF(frame);
    if (positions != local) {
        PyMem_Free(positions);
    }
    return found;
}


static PyObject *
frame_ids(PyObject *Py_UNUSED(module), PyObject *const *args,
          Py_ssize_t nargs)
{
    if (nargs < 1 || nargs > 3) {
        PyErr_SetString(PyExc_TypeError,
                        "frame_ids() takes a frame (or None), a limit and "
                        "a memo");
        return NULL;
    }
    if (args[0] != Py_None && !PyFrame_Check(args[0])) {
        PyErr_Format(PyExc_TypeError, "frame_ids() wants a frame, not %.100s",
                     Py_TYPE(args[0])->tp_name);
        return NULL;
    }
    /* stacks.frame_ids' default (tests/unit/test_sites.py holds the two
     * to the same keys, past it too). */
    Py_ssize_t limit = nargs >= 2 ? PyLong_AsSsize_t(args[1]) : 200;
    if (limit == -1 && PyErr_Occurred()) {
        return NULL;
    }
    PyObject *memo = nargs == 3 && args[2] != Py_None ? args[2] : NULL;
    if (memo != NULL && !PyDict_CheckExact(memo)) {
        PyErr_Format(PyExc_TypeError, "frame_ids() wants a dict as its "
                     "memo, not %.100s", Py_TYPE(memo)->tp_name);
        return NULL;
    }
    return stack_key(args[0], limit, memo);
}

PyDoc_STRVAR(gather_doc,
"gather(greenlets, by_stack, memo, hub_greenlets, on_fd, fd_kinds, plain,\n"
"       slow)\n\n"
"File each greenlet as df_gmr.runtime.greens.Greens._gather's loop does:\n"
"a parked greenlet (not a hub's, not a main one) whose stack is known in\n"
"by_stack, and whose kind has its list there, is appended to that list\n"
"here; any other is handed to slow(greenlet), in turn (order kept).");

/* The loop of Green Threads' gather (once per greenlet: 100,000 and
 * more), its common case in C: a parked greenthread's stack key (the walk
 * above, with the report's memo), its kind (greenlet or greenthread), its
 * stack's entry and the list of its kind there, then one append.  Every
 * other case (no frame: running, dead, not started; a hub's greenlet; a
 * main greenlet; a stack not seen yet; a descriptor wait to tell) is
 * slow(greenlet): the Python loop's own body, called in turn so that
 * every list keeps the greenlets' order.  greens.py's pure-Python loop is
 * the reference; tests/unit/test_sites.py holds the two to the same
 * groups. */
static PyObject *
gather(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 8) {
        PyErr_SetString(PyExc_TypeError, "gather() takes 8 arguments");
        return NULL;
    }
    PyObject *by_stack = args[1], *memo = args[2], *hubs = args[3],
        *on_fd = args[4], *fd_kinds = args[5], *plain = args[6],
        *slow = args[7];
    if (!PyDict_CheckExact(by_stack) || !PyDict_CheckExact(memo)
            || !PyAnySet_Check(hubs) || !PyAnySet_Check(on_fd)
            || !PyAnySet_Check(fd_kinds) || !PyType_Check(plain)
            || !PyCallable_Check(slow)) {
        PyErr_SetString(PyExc_TypeError, "gather(): by_stack and memo are "
                        "dicts, hub_greenlets, on_fd and fd_kinds sets, "
                        "plain a type, slow a callable");
        return NULL;
    }
    PyObject *iterator = PyObject_GetIter(args[0]);
    if (iterator == NULL) {
        return NULL;
    }
    PyObject *green;
    while ((green = PyIter_Next(iterator)) != NULL) {
        int fast = 0;
        PyObject *frame = PyObject_GetAttr(green, gr_frame_name);
        if (frame == NULL) {
            goto fail;
        }
        if (frame != Py_None) {
            fast = PySet_Contains(hubs, green);
            if (fast < 0) {
                Py_DECREF(frame);
                goto fail;
            }
            fast = !fast;
        }
        if (fast) {
            PyObject *parent = PyObject_GetAttr(green, parent_name);
            if (parent == NULL) {
                Py_DECREF(frame);
                goto fail;
            }
            fast = parent != Py_None;
            Py_DECREF(parent);
        }
        /* Strong references throughout: hashing a greenlet of a subclass
         * may run Python code, which could change the dicts read. */
        PyObject *members = NULL;
        if (fast) {
            PyObject *key = stack_key(frame, 200, memo);
            if (key == NULL) {
                Py_DECREF(frame);
                goto fail;
            }
            PyObject *found = PyDict_GetItemWithError(by_stack, key);
            Py_XINCREF(found);
            Py_DECREF(key);
            if (found == NULL && PyErr_Occurred()) {
                Py_DECREF(frame);
                goto fail;
            }
            if (found != NULL && PyTuple_CheckExact(found)
                    && PyTuple_GET_SIZE(found) == 5
                    && PyDict_CheckExact(PyTuple_GET_ITEM(found, 4))) {
                /* A descriptor wait is told by the Python loop. */
                int told = PySet_Contains(fd_kinds,
                                          PyTuple_GET_ITEM(found, 0));
                if (told > 0) {
                    told = PySet_Contains(on_fd, green);
                }
                if (told == 0) {
                    PyObject *kind = Py_IS_TYPE(green, (PyTypeObject *)plain)
                        ? greenlet_name : greenthread_name;
                    members = PyDict_GetItemWithError(
                        PyTuple_GET_ITEM(found, 4), kind);
                    Py_XINCREF(members);
                }
                if (told < 0 || (members == NULL && PyErr_Occurred())) {
                    Py_DECREF(found);
                    Py_DECREF(frame);
                    goto fail;
                }
            }
            Py_XDECREF(found);
        }
        int failed;
        if (members != NULL && PyList_CheckExact(members)) {
            failed = PyList_Append(members, green) < 0;
        }
        else {
            PyObject *done = PyObject_CallOneArg(slow, green);
            failed = done == NULL;
            Py_XDECREF(done);
        }
        Py_XDECREF(members);
        Py_DECREF(frame);
        if (failed) {
            goto fail;
        }
        Py_DECREF(green);
    }
    Py_DECREF(iterator);
    if (PyErr_Occurred()) {
        return NULL;
    }
    Py_RETURN_NONE;
fail:
    Py_DECREF(green);
    Py_DECREF(iterator);
    return NULL;
}

PyDoc_STRVAR(line_at_doc,
"line_at(code, offset)\n\n"
"Return what df_gmr.stacks.line_at computes on a miss: the line of the\n"
"instruction at byte offset of code, or code.co_firstlineno where the\n"
"line table gives none.");

/* A line from an offset (f_lasti): Python's own scan of the line table
 * (PyCode_Addr2Line, what f_lineno uses), not a Python loop over
 * co_lines(), whose entries a first report walks for every place it
 * shows (a hundred, of functions of hundreds of lines). */
static PyObject *
line_at(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyCode_Check(args[0]) || !PyLong_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError,
                        "line_at() takes a code object and an offset");
        return NULL;
    }
    PyCodeObject *code = (PyCodeObject *)args[0];
    int overflow = 0;
    long offset = PyLong_AsLongAndOverflow(args[1], &overflow);
    if (offset == -1 && PyErr_Occurred()) {
        return NULL;
    }
    /* Past the code (never an f_lasti), the table would give its last
     * line: the Python loop finds none there. */
    int line = -1;
    if (!overflow && offset >= 0
            && offset < Py_SIZE(code) * (Py_ssize_t)sizeof(_Py_CODEUNIT)) {
        line = PyCode_Addr2Line(code, (int)offset);
    }
    return PyLong_FromLong(line < 0 ? code->co_firstlineno : line);
}

PyDoc_STRVAR(unchanged_doc,
"unchanged(value, keys, done, limit, max_text, room)\n\n"
"Say whether df_gmr.plain.Normaliser.masked, not hidden, would return\n"
"value itself, unchanged and with nothing counted: exact dicts and\n"
"lists, nested at most room levels, of None, bools, ints that fit 64\n"
"bits, finite floats, and strings already masked to themselves (done)\n"
"under keys already masked to themselves and not hiding (keys), none\n"
"longer than limit or max_text (None: no limit).  False means: walk it\n"
"in Python (anything else, or what the walk has not seen yet).");

/* One value of unchanged(); room: the container levels still allowed.
 * Only exact types are read, and only dict look-ups with exact str keys
 * are made: no Python code runs, so nothing changes under the walk. */
static int
masks_to_itself(PyObject *value, PyObject *keys, PyObject *done,
                Py_ssize_t limit, Py_ssize_t max_text, int room)
{
    if (value == Py_None || PyBool_Check(value)) {
        return 1;
    }
    if (PyLong_CheckExact(value)) {
        int overflow = 0;
        long long number = PyLong_AsLongLongAndOverflow(value, &overflow);
        (void)number;  /* never -1 with an error: an exact int */
        return !overflow;  /* bigger ones: Python checks their bounds */
    }
    if (PyFloat_CheckExact(value)) {
        return isfinite(PyFloat_AS_DOUBLE(value));
    }
    if (PyUnicode_CheckExact(value)) {
        Py_ssize_t length = PyUnicode_GET_LENGTH(value);
        if ((max_text >= 0 && length > max_text)
                || (limit >= 0 && length > limit)) {
            return 0;  /* cut */
        }
        PyObject *masked = PyDict_GetItemWithError(done, value);
        if (masked == NULL) {
            PyErr_Clear();  /* not masked yet: Python masks it */
            return 0;
        }
        return masked == value || (PyUnicode_CheckExact(masked)
                                   && PyUnicode_Compare(masked, value) == 0);
    }
    if (room < 0) {
        return 0;  /* too deep: Python says so */
    }
    if (PyList_CheckExact(value)) {
        for (Py_ssize_t index = 0; index < PyList_GET_SIZE(value); index++) {
            if (!masks_to_itself(PyList_GET_ITEM(value, index), keys, done,
                                 limit, max_text, room - 1)) {
                return 0;
            }
        }
        return 1;
    }
    if (PyDict_CheckExact(value)) {
        Py_ssize_t position = 0;
        PyObject *key, *item;
        while (PyDict_Next(value, &position, &key, &item)) {
            if (!PyUnicode_CheckExact(key)) {
                return 0;
            }
            PyObject *known = PyDict_GetItemWithError(keys, key);
            if (known == NULL) {
                PyErr_Clear();
                return 0;
            }
            /* (masked key, hides): the key itself, hiding nothing. */
            if (!PyTuple_CheckExact(known) || PyTuple_GET_SIZE(known) != 2
                    || PyTuple_GET_ITEM(known, 0) != key
                    || PyTuple_GET_ITEM(known, 1) != Py_False
                    || !masks_to_itself(item, keys, done, limit, max_text,
                                        room - 1)) {
                return 0;
            }
        }
        return 1;
    }
    return 0;
}

/* None, or a non-negative int: a length limit (-1: none). */
static int
length_limit(PyObject *given, Py_ssize_t *limit)
{
    if (given == Py_None) {
        *limit = -1;
        return 0;
    }
    *limit = PyLong_Check(given) ? PyLong_AsSsize_t(given) : -1;
    if (*limit < 0) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_ValueError,
                            "unchanged(): a limit is None or an int >= 0");
        }
        return -1;
    }
    return 0;
}

/* The masking walk of a built-in section's data (Normaliser.masked) is
 * one Python call per dict (a group's members: 5,000 at 10,000
 * greenthreads), each giving back the dict itself: the same answer,
 * read here in one pass over the memos that walk fills. */
static PyObject *
unchanged(PyObject *Py_UNUSED(module), PyObject *const *args,
          Py_ssize_t nargs)
{
    if (nargs != 6 || !PyDict_CheckExact(args[1])
            || !PyDict_CheckExact(args[2]) || !PyLong_Check(args[5])) {
        PyErr_SetString(PyExc_TypeError,
                        "unchanged() takes a value, two dicts, two limits "
                        "and a depth");
        return NULL;
    }
    Py_ssize_t limit, max_text;
    if (length_limit(args[3], &limit) < 0
            || length_limit(args[4], &max_text) < 0) {
        return NULL;
    }
    long room = PyLong_AsLong(args[5]);
    if (room == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (room > 1000) {
        room = 1000;  /* the C stack's own bound */
    }
    return PyBool_FromLong(masks_to_itself(args[0], args[1], args[2], limit,
                                           max_text, (int)room));
}

static PyMethodDef sites_functions[] = {
    {"frame_ids", (PyCFunction)(void (*)(void))frame_ids, METH_FASTCALL,
     frame_ids_doc},
    {"gather", (PyCFunction)(void (*)(void))gather, METH_FASTCALL,
     gather_doc},
    {"line_at", (PyCFunction)(void (*)(void))line_at, METH_FASTCALL,
     line_at_doc},
    {"unchanged", (PyCFunction)(void (*)(void))unchanged, METH_FASTCALL,
     unchanged_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef sites_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "df_gmr._sites",
    .m_doc = "The spawn hook's per-spawn work, the stack walk and the "
             "masking walk's common case, in C (see df_gmr.greenlets, "
             "df_gmr.stacks, df_gmr.runtime.greens, df_gmr.plain).",
    .m_size = -1,
    .m_methods = sites_functions,
};

PyMODINIT_FUNC
PyInit__sites(void)
{
    usual_name = PyUnicode_InternFromString("usual");
    gr_frame_name = PyUnicode_InternFromString("gr_frame");
    parent_name = PyUnicode_InternFromString("parent");
    greenlet_name = PyUnicode_InternFromString("greenlet");
    greenthread_name = PyUnicode_InternFromString("greenthread");
    if (usual_name == NULL || gr_frame_name == NULL || parent_name == NULL
            || greenlet_name == NULL || greenthread_name == NULL
            || PyType_Ready(&SitesType) < 0
            || PyType_Ready(&RegistryType) < 0) {
        return NULL;
    }
    PyObject *module = PyModule_Create(&sites_module);
    if (module == NULL) {
        return NULL;
    }
    if (PyModule_AddObjectRef(module, "Sites", (PyObject *)&SitesType) < 0
            || PyModule_AddObjectRef(module, "Registry",
                                     (PyObject *)&RegistryType) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
