"""A small OpenFOAM case written from Python: an nx x ny x 1 block of hexahedra (ASCII polyMesh)
and uniform fields per time directory, for the OpenFOAM reader tests (no OpenFOAM needed)."""

from __future__ import annotations

from pathlib import Path

HEADER = "FoamFile\n{{\n    version 2.0;\n    format ascii;\n    class {cls};\n    object {obj};\n}}\n"


def _write(path: Path, cls: str, obj: str, body: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER.format(cls=cls, obj=obj) + body)


def write_case(case: Path, nx: int, ny: int, fields: dict[float, tuple[float, float, float]], two_d: bool = True) -> None:
    """Unit cells on [0, nx] x [0, ny] x [0, 1]; `fields` maps each time to a uniform U (p = U_x).
    With `two_d` the front and back are `empty` (a 2D case), else no-slip walls (a 3D case)."""
    side = "empty" if two_d else "wall"

    def p(i: int, j: int, k: int) -> int:
        return i + (nx + 1) * (j + (ny + 1) * k)

    points = [(i, j, k) for k in range(2) for j in range(ny + 1) for i in range(nx + 1)]
    faces, owner, neighbour = [], [], []
    for j in range(ny):
        for i in range(nx):
            c = i + nx * j
            if i < nx - 1:  # +x face to the right neighbour
                faces.append((p(i + 1, j, 0), p(i + 1, j + 1, 0), p(i + 1, j + 1, 1), p(i + 1, j, 1)))
                owner.append(c), neighbour.append(c + 1)
            if j < ny - 1:  # +y face to the upper neighbour
                faces.append((p(i, j + 1, 0), p(i, j + 1, 1), p(i + 1, j + 1, 1), p(i + 1, j + 1, 0)))
                owner.append(c), neighbour.append(c + nx)
    n_internal = len(faces)
    walls = []
    for j in range(ny):
        walls.append(((p(0, j, 0), p(0, j, 1), p(0, j + 1, 1), p(0, j + 1, 0)), nx * j))
        walls.append(((p(nx, j, 0), p(nx, j + 1, 0), p(nx, j + 1, 1), p(nx, j, 1)), nx - 1 + nx * j))
    for i in range(nx):
        walls.append(((p(i, 0, 0), p(i + 1, 0, 0), p(i + 1, 0, 1), p(i, 0, 1)), i))
        walls.append(((p(i, ny, 0), p(i, ny, 1), p(i + 1, ny, 1), p(i + 1, ny, 0)), i + nx * (ny - 1)))
    empty = []
    for j in range(ny):
        for i in range(nx):
            empty.append(((p(i, j, 0), p(i, j + 1, 0), p(i + 1, j + 1, 0), p(i + 1, j, 0)), i + nx * j))
            empty.append(((p(i, j, 1), p(i + 1, j, 1), p(i + 1, j + 1, 1), p(i, j + 1, 1)), i + nx * j))
    for f, c in walls + empty:
        faces.append(f), owner.append(c)
    mesh = case / "constant" / "polyMesh"
    _write(mesh / "points", "vectorField", "points", f"{len(points)}\n(\n" + "".join(f"({x} {y} {z})\n" for x, y, z in points) + ")\n")
    _write(mesh / "faces", "faceList", "faces", f"{len(faces)}\n(\n" + "".join(f"4({' '.join(map(str, f))})\n" for f in faces) + ")\n")
    _write(mesh / "owner", "labelList", "owner", f"{len(owner)}\n(\n" + "\n".join(map(str, owner)) + "\n)\n")
    _write(mesh / "neighbour", "labelList", "neighbour", f"{len(neighbour)}\n(\n" + "\n".join(map(str, neighbour)) + "\n)\n")
    boundary = (
        "2\n(\nwalls\n{\n    type wall;\n"
        f"    nFaces {len(walls)};\n    startFace {n_internal};\n}}\n"
        f"frontAndBack\n{{\n    type {side};\n"
        f"    nFaces {len(empty)};\n    startFace {n_internal + len(walls)};\n}}\n)\n"
    )
    _write(mesh / "boundary", "polyBoundaryMesh", "boundary", boundary)
    sides = "empty" if two_d else "zeroGradient"
    bcs = "boundaryField\n{\n    walls { type zeroGradient; }\n    frontAndBack { type " + sides + "; }\n}\n"
    for t, (u, v, w) in fields.items():
        d = case / f"{t:g}"
        _write(d / "U", "volVectorField", "U", f"dimensions [0 1 -1 0 0 0 0];\ninternalField uniform ({u} {v} {w});\n" + bcs)
        _write(d / "p", "volScalarField", "p", f"dimensions [0 2 -2 0 0 0 0];\ninternalField uniform {u};\n" + bcs)
