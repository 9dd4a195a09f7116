# Sourced: prints the Debian package names of scripts/packages.debian.
debian_packages() {
    sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$(dirname "${BASH_SOURCE[0]}")/packages.debian" | awk '{print $1}'
}
