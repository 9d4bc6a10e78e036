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

typedef struct {
    PyObject_HEAD
    PyObject *alive;     /* dict: greenthread -> site */
    PyObject *recorder;  /* a df_gmr.callers.Callers */
    PyObject *record;    /* recorder.record */
    PyObject *getframe;  /* sys._getframe */
    PyObject *depth;     /* the spawner's depth, from the caller's frame */
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
    PyObject *frame = PyObject_Vectorcall(self->getframe, &self->depth, 1,
                                          NULL);
    if (frame == NULL) {
        /* No spawner: spawn() is the outermost frame of a greenlet
         * (spawn_n(spawn, f)). */
        if (!PyErr_ExceptionMatches(PyExc_ValueError)) {
            return NULL;
        }
        PyErr_Clear();
        if (PyDict_SetItem(self->alive, green, Py_None) < 0) {
            return NULL;
        }
        Py_RETURN_NONE;
    }
    int lasti = PyFrame_GetLasti((PyFrameObject *)frame);
    if (frame == self->frame && lasti == self->lasti) {
        /* The very frame object at the same instruction: the same
         * activation (a frame object held is never reused). */
        Py_DECREF(frame);
        if (PyDict_SetItem(self->alive, green, self->site) < 0) {
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
    if (PyDict_SetItem(self->alive, green, site) < 0) {
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
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O!OO!:Sites", names,
                                     &PyDict_Type, &alive, &recorder,
                                     &PyLong_Type, &depth)) {
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
    Py_XSETREF(self->depth, Py_NewRef(depth));
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
"registry (greenthread -> site), recorder a df_gmr.callers.Callers,\n"
"depth how far the spawner's frame is from note()'s caller.");

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
            || PyType_Ready(&SitesType) < 0) {
        return NULL;
    }
    PyObject *module = PyModule_Create(&sites_module);
    if (module == NULL) {
        return NULL;
    }
    if (PyModule_AddObjectRef(module, "Sites", (PyObject *)&SitesType) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
