"""screwcam's own exception types. Every message says what is wrong and what to do."""


class ScrewcamError(Exception):
    """Base class: the CLI prints the message and exits non-zero, without a traceback."""


class CameraError(ScrewcamError):
    """A source failed to open or stopped delivering frames."""


class DatasetError(ScrewcamError):
    """A dataset, image or label could not be read or is malformed."""


class ModelError(ScrewcamError):
    """A model bundle is missing, corrupt, or does not match this version of screwcam."""


class ConfigError(ScrewcamError):
    """A configuration file or value is invalid."""
