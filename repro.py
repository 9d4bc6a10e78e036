import sys; sys.path.insert(0, "/tmp/rev31")
from fuzz import two_walks, one_walk, outcome, old_plain, MAXT
from df_gmr import report, redact, plain
from df_gmr.plain import Normaliser
def show(label, v, **kw):
    for p in (True,):
        print(label)
        print("  two :", repr(outcome(two_walks, v, p, **kw))[:300])
        print("  new :", repr(outcome(one_walk, v, p, **kw))[:300])
        print("  old :", repr(outcome(one_walk, v, p, mod=old_plain, **kw))[:300])
def listed(n, leaf):
    for _ in range(n): leaf = [leaf]
    return leaf
show("A float in a list at depth 65", listed(65, 1.5))
show("A2 under password", {"password": listed(64, 1.5)})
show("A3 nan", listed(65, float("nan")))
class Thing: pass
show("B cut of an overwritten value", {Thing(): "x" * 5000, "Thing": 1})
class SeCrEtVaLuE: pass
show("C two-level key collision", {"SeCrEtVaLuE": "first", "***": "second", SeCrEtVaLuE(): "third"})
show("C2", {"SeCrEtVaLuE": 1, "***": 2, SeCrEtVaLuE(): 3})
# realistic: numeric secret
def walks(v, secrets):
    n = Normaliser(describe=lambda x: type(x).__name__, max_text=MAXT); r = redact.Redactor(secrets)
    two = r.data(n.plain(v), True, report.MAX_TEXT)
    n = Normaliser(describe=lambda x: type(x).__name__, max_text=MAXT); r = redact.Redactor(secrets)
    r.begin(True, report.MAX_TEXT); one = n.masked(v, r)
    return two, one
print("C3 numeric secret 20240607:", walks({"20240607": "a", "***": "b", 20240607: "c"}, ["20240607"]))
print("C4 hides differ:", walks({"20240607": "a", "***": "b", 20240607: "c"}, ["20240607"]))
