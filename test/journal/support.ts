/** Test support for the journal layer's tests. */

// A small recording in libvirt's .replies format (tests/qemucapabilitiesdata/caps_*.replies):
// indented objects separated by blank lines, no greeting.
export const SAMPLE_REPLIES = `{
  "execute": "qmp_capabilities",
  "id": "libvirt-1"
}

{
  "return": {
  },
  "id": "libvirt-1"
}

{
  "execute": "query-version",
  "id": "libvirt-2"
}

{
  "return": {
    "qemu": {
      "micro": 2,
      "minor": 2,
      "major": 8
    },
    "package": "v8.2.2"
  },
  "id": "libvirt-2"
}

{
  "execute": "query-kvm",
  "id": "libvirt-3"
}

{
  "return": {
    "enabled": true,
    "present": true
  },
  "id": "libvirt-3"
}
`;
