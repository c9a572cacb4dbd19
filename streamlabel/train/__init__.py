"""Training a student from the dataset, the gold set, evaluation and the retraining schedule (issue 16)."""

from streamlabel.train.runs import UnknownStudentError, current_student, resolve_student

__all__ = ["UnknownStudentError", "current_student", "resolve_student"]
