"""The student in the daemon (issue 16, point 3): a trained YOLO-seg model run beside the pipeline on every frame.

Its finds are compared with the pipeline's parts (a ``disagreement`` score per label row, the review queue puts
high disagreement first), the parts it finds and the pipeline missed become review items (``source`` student), and
``models.student.gate`` lets frames where it finds nothing skip grounding and segmentation. docs/student.md.
"""

from streamlabel.frames import STUDENT_SOURCE
from streamlabel.student.compare import PIPELINE_SOURCE, Disagreement, mask_iou_matrix, score
from streamlabel.student.model import StudentUnavailableError, UltralyticsFinder
from streamlabel.student.student import MissedParts, Student, load_student

__all__ = [
    "PIPELINE_SOURCE",
    "STUDENT_SOURCE",
    "Disagreement",
    "MissedParts",
    "Student",
    "StudentUnavailableError",
    "UltralyticsFinder",
    "load_student",
    "mask_iou_matrix",
    "score",
]
