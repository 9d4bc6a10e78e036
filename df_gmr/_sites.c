/*
 * df_gmr._sites: the spawn hook's per-spawn work, and the walk of a
 * report's stacks (frame_ids, below), in C (optional).
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
"frame_ids(frame, limit=200)\n\n"
"Return what df_gmr.stacks.frame_ids returns: (id(code), f_lasti, ...)\n"
"of the chain of frame (None: an empty tuple), innermost first, at most\n"
"limit frames.");

/* The walk of every stack of a report (100,000 greenlets and more): in
 * Python each frame costs four attribute reads, f_code's an audit event
 * ("object.__getattr__"), and two appends; here the same reads through
 * the C API that those attributes use (PyFrame_GetCode, PyFrame_GetLasti,
 * PyFrame_GetBack), and no audit event.  The GIL is held throughout: a
 * live thread's stack is read at one moment. */
static PyObject *
frame_ids(PyObject *Py_UNUSED(module), PyObject *const *args,
          Py_ssize_t nargs)
{
    if (nargs < 1 || nargs > 2) {
        PyErr_SetString(PyExc_TypeError,
                        "frame_ids() takes a frame (or None) and a limit");
        return NULL;
    }
    if (args[0] != Py_None && !PyFrame_Check(args[0])) {
        PyErr_Format(PyExc_TypeError, "frame_ids() wants a frame, not %.100s",
                     Py_TYPE(args[0])->tp_name);
        return NULL;
    }
    /* stacks.frame_ids' default (tests/unit/test_sites.py holds the two
     * to the same keys, past it too). */
    Py_ssize_t limit = nargs == 2 ? PyLong_AsSsize_t(args[1]) : 200;
    if (limit == -1 && PyErr_Occurred()) {
        return NULL;
    }
    /* The keys, two per frame, gathered here then moved into the tuple
     * (most stacks fit the first buffer; a deeper one grows on the heap). */
    PyObject *local[2 * 64];
    PyObject **keys = local;
    Py_ssize_t size = 0, room = 2 * 64;
    PyObject *found = NULL;
    PyFrameObject *frame = args[0] == Py_None ? NULL
        : (PyFrameObject *)Py_NewRef(args[0]);
    while (frame != NULL && limit > 0) {
        if (size + 2 > room) {
            PyObject **grown = PyMem_Malloc(2 * room * sizeof(PyObject *));
            if (grown == NULL) {
                PyErr_NoMemory();
                goto done;
            }
            memcpy(grown, keys, size * sizeof(PyObject *));
            if (keys != local) {
                PyMem_Free(keys);
            }
            keys = grown;
            room *= 2;
        }
        PyCodeObject *code = PyFrame_GetCode(frame);
        /* The code stays alive through the frame: its address is id(). */
        PyObject *ident = PyLong_FromVoidPtr(code);
        Py_DECREF(code);
        if (ident == NULL) {
            goto done;
        }
        keys[size++] = ident;
        PyObject *lasti = PyLong_FromLong(PyFrame_GetLasti(frame));
        if (lasti == NULL) {
            goto done;
        }
        keys[size++] = lasti;
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
    found = PyTuple_New(size);
    if (found != NULL) {
        for (Py_ssize_t index = 0; index < size; index++) {
            PyTuple_SET_ITEM(found, index, keys[index]);  /* moved */
        }
        size = 0;
    }
done:
    Py_XDECREF(frame);
    for (Py_ssize_t index = 0; index < size; index++) {
        Py_DECREF(keys[index]);
    }
    if (keys != local) {
        PyMem_Free(keys);
    }
    return found;
}

static PyMethodDef sites_functions[] = {
    {"frame_ids", (PyCFunction)(void (*)(void))frame_ids, METH_FASTCALL,
     frame_ids_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef sites_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "df_gmr._sites",
    .m_doc = "The spawn hook's per-spawn work and the stack walk, in C "
             "(see df_gmr.greenlets and df_gmr.stacks).",
    .m_size = -1,
    .m_methods = sites_functions,
};

PyMODINIT_FUNC
PyInit__sites(void)
{
    usual_name = PyUnicode_InternFromString("usual");
    if (usual_name == NULL || PyType_Ready(&SitesType) < 0) {
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
