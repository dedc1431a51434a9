"""Dalsland's organisations, as the seed documents describe the cooperation (fictional ids)."""

from __future__ import annotations

from dataclasses import dataclass

MUNICIPALITIES = {
    "1460": ("bengtsfors", "Bengtsfors"),
    "1438": ("dals-ed", "Dals-Ed"),
    "1439": ("fargelanda", "Färgelanda"),
    "1461": ("mellerud", "Mellerud"),
    "1492": ("amal", "Åmål"),
}
MUNICIPAL_UNITS = (
    ("forskola", "preschool", "förskola"),
    ("skola", "school", "grundskola"),
    ("elevhalsa", "student_health", "elevhälsa"),
    ("socialtjanst", "social_services", "socialtjänst"),
)
SHARING_SCOPES = ["events:publish", "feed:read", "relationships:write", "consents:write"]


@dataclass(frozen=True)
class DemoOrg:
    id: str
    name: str
    kind: str
    municipality: str | None
    scopes: tuple[str, ...] = tuple(SHARING_SCOPES)


def organisations() -> list[DemoOrg]:
    orgs = [
        DemoOrg(f"{slug}-{unit}", f"{name} {label}", kind, code)
        for code, (slug, name) in MUNICIPALITIES.items()
        for unit, kind, label in MUNICIPAL_UNITS
    ]
    orgs += [
        DemoOrg("vgr-vc-dalsland", "Vårdcentral och BVC Dalsland (VGR)", "health", None),
        DemoOrg("vgr-bup-dalsland", "BUP Dalsland (VGR)", "health", None),
        DemoOrg("polisen-fyrbodal", "Polisen, lokalpolisområde Fyrbodal", "police", None),
        DemoOrg(
            "dalsland-granskning",
            "Dataskyddsombud och internrevision Dalsland",
            "oversight",
            None,
            ("audit:read",),
        ),
        # The cooperation's steering group and project lead: the follow-up's numbers, no child.
        DemoOrg(
            "dalsland-styrgrupp",
            "Styrgrupp Backa barnet Dalsland",
            "oversight",
            None,
            ("followup:read",),
        ),
    ]
    return orgs
