"""fewseg: few-shot object segmentation for microscopy.

The method, stage by stage (each a module):

load -> examples -> propose -> embed -> select -> polygons -> write / evaluate
"""

from .errors import FewsegError, InputError
from .objects import Annotation, Frame, Location, ObjectMask

__version__ = "0.1.0"

__all__ = [
    "Annotation",
    "FewsegError",
    "Frame",
    "InputError",
    "Location",
    "ObjectMask",
    "__version__",
]
