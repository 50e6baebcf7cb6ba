"""``python -m karen_ops.doctor``: the doctor without the rest of the command line."""

import sys

from karen_ops.doctor.commands import doctor_command

sys.exit(doctor_command(None))
