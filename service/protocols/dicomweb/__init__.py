"""DICOMweb: the hospital's PACS in and out. ``pull`` fetches a study (QIDO-RS, WADO-RS),
``stow`` receives pushed instances (STOW-RS); both classify on the shared inference path
(``study``) and store a Structured Report (``report``) back through ``client``."""
