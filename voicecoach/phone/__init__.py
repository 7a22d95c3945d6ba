"""Phone export: many routines to MP3/M4B/Opus files with covers (``library``), a podcast feed
of an export folder (``feed``), a LAN server for it (``serve``) and the generated covers
(``cover``)."""
