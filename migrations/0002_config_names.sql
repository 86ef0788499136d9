-- Config names MAAS 2.8 knows that the first schema left out (2.8's
-- defaults: models/config.py; main_archive is 2.8's migrated value, the
-- main package repository's URL).
INSERT INTO config (name, value) VALUES
    ('boot_images_auto_import', 'true'),
    ('kernel_opts', 'null'),
    ('default_storage_layout', '"flat"'),
    ('main_archive', '"http://archive.ubuntu.com/ubuntu"')
ON CONFLICT (name) DO NOTHING;
