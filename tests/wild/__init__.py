"""A wild corpus: BatchNorms written the way public code writes them (tutorials, course
homework, library layers), each class stating the codes a careful reader expects.

Every class (or factory, or functools.partial) here carries:
  EXPECTED  codes that must be reported (error or warning level);
  FALSE     codes that would be false claims about it and must not be reported;
  SPEC      the spec to check against (default "pytorch"), INIT constructor keywords.
An empty EXPECTED means the class is correct: no error and no warning at all.
tests/test_wild.py runs the checker on every entry; README.md records what it says.
"""
