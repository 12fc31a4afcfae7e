"""The site gateway: read meters, sign, buffer on disk, publish."""
