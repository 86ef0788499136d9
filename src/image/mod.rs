//! The ephemeral environment: kernel + initramfs built from host packages.
