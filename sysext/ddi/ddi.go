// Package ddi writes and reads Discoverable Disk Images (DDIs) of
// extensions: a GPT disk holding the root file system as root-ARCH, its
// dm-verity hash tree (package sysext/verity) as root-ARCH-verity and,
// when signed, the signature of the root hash (package sysext/veritysig)
// as root-ARCH-verity-sig, the layout systemd-repart --make-ddi=sysext
// writes and systemd-dissect, systemd-sysext and bakery's merge read.
//
// Partition types and labels are the Discoverable Partitions
// Specification's; the root and verity partitions are flagged read-only,
// and their UUIDs are the two halves of the root hash, as systemd-repart
// sets them. The signature partition's UUID and the disk's GUID are
// derived from the root hash, so the same tree gives the same bytes.
//
// The partition table is written by github.com/diskfs/go-diskfs. It is
// read by this package's own reader (table.go): go-diskfs's allocates
// whatever entry count and size a header claims and checks neither that
// partitions lie inside the disk nor that they do not overlap, and a node
// reads DDIs it does not trust yet.
package ddi

import (
	"encoding/hex"
	"fmt"

	"github.com/google/uuid"
)

// Sector is the logical sector size of the DDIs bakery writes and reads,
// as systemd-repart writes image files.
const Sector = 512

// Partition roles in a DDI, the suffixes of their labels and types.
const (
	RoleRoot      = "root"
	RoleVerity    = "root-verity"
	RoleSignature = "root-verity-sig"
)

// flagReadOnly is GPT attribute bit 60, which systemd-repart sets on the
// root and verity partitions of a DDI.
const flagReadOnly = uint64(1) << 60

// partitionTypes are the Discoverable Partitions Specification's type
// UUIDs of the root, root-verity and root-verity-sig partitions, by
// systemd architecture name (systemd-id128 show prints them).
var partitionTypes = map[string][3]string{
	"x86-64":      {"4f68bce3-e8cd-4db1-96e7-fbcaf984b709", "2c7357ed-ebd2-46d9-aec1-23d437ec2bf5", "41092b05-9fc8-4523-994f-2def0408b176"},
	"arm64":       {"b921b045-1df0-41c3-af44-4c6f280d3fae", "df3300ce-d69f-4c92-978c-9bfb0f38d820", "6db69de6-29f4-4758-a7a5-962190f00ce3"},
	"x86":         {"44479540-f297-41b2-9af7-d131d5f0458a", "d13c5d3b-b5d1-422a-b29f-9454fdc89d76", "5996fc05-109c-48de-808b-23fa0830b676"},
	"arm":         {"69dad710-2ce4-4e3c-b16c-21a1d49abed3", "7386cdf2-203c-47a9-a498-f2ecce45a2d6", "42b0455f-eb11-491d-98d3-56145ba9d037"},
	"ppc64-le":    {"c31c45e6-3f39-412e-80fb-4809c4980599", "906bd944-4589-4aae-a4e4-dd983917446a", "d4a236e7-e873-4c07-bf1d-bf6cf7f1c3c6"},
	"riscv64":     {"72ec70a6-cf74-40e6-bd49-4bda08e8f224", "b6ed5582-440b-4209-b8da-5ff7c419ea3d", "efe0f087-ea8d-4469-821a-4c2a96a8386a"},
	"s390x":       {"5eead9a9-fe09-4a1e-a1d7-520d00531306", "b325bfbe-c7be-4ab8-8357-139e652d2f6b", "c80187a5-73a3-491a-901a-017c3fa953e9"},
	"loongarch64": {"77055800-792c-4f94-b39a-98c91b762bb6", "f3393b22-e9af-4613-a948-9d3bfbd0c535", "5afb67eb-ecc8-4f85-ae8e-ac1e7c50e7d0"},
}

// roles are the roles in partitionTypes' order.
var roles = [3]string{RoleRoot, RoleVerity, RoleSignature}

// PartitionType returns the type UUID of the partition of role for the
// systemd architecture arch.
func PartitionType(arch, role string) (uuid.UUID, error) {
	types, ok := partitionTypes[arch]
	if !ok {
		return uuid.UUID{}, fmt.Errorf("architecture %q has no DDI partition types", arch)
	}
	for i, r := range roles {
		if r == role {
			return uuid.MustParse(types[i]), nil
		}
	}
	return uuid.UUID{}, fmt.Errorf("partition role %q: use %s, %s or %s", role, RoleRoot, RoleVerity, RoleSignature)
}

// roleOf tells the architecture and role of a partition type, if it is
// one of a DDI's.
func roleOf(t uuid.UUID) (arch, role string, ok bool) {
	s := t.String()
	for a, types := range partitionTypes {
		for i, ts := range types {
			if ts == s {
				return a, roles[i], true
			}
		}
	}
	return "", "", false
}

// Label is the partition label systemd-repart gives the partition of role
// for arch: "root-x86-64", "root-x86-64-verity", "root-x86-64-verity-sig".
func Label(arch, role string) string {
	return "root-" + arch + role[len(RoleRoot):]
}

// derivedUUID is a name-based (version 5) UUID derived from the root hash
// for what (the signature partition, the disk).
func derivedUUID(rootHash []byte, what string) uuid.UUID {
	return uuid.NewSHA1(uuid.NameSpaceURL, []byte("https://github.com/sysext-bakery/bakery/ddi/"+what+"/"+hex.EncodeToString(rootHash)))
}
