"""Run by ParaView's pvpython, not by pytest: `pvpython paraview_dump.py jobs.json`.

Each job {"path", "npz", "png", "color"} opens `path` with the reader ParaView picks for it,
writes to `npz` the time steps and, for every time step k and leaf block i, every point array
as "k/i/<name>" (and "k/i/points"), then renders the last step in the default representation,
coloured by `color`, to `png`.
"""

import json
import sys

import numpy as np
from paraview import servermanager
from paraview.simple import ColorBy, GetActiveViewOrCreate, Hide, OpenDataFile, Render, ResetCamera, SaveScreenshot, Show
from vtkmodules.util.numpy_support import vtk_to_numpy


def leaves(data):
    if not data.IsA("vtkCompositeDataSet"):
        return [data]
    it = data.NewIterator()
    it.SkipEmptyNodesOn()
    it.InitTraversal()
    out = []
    while not it.IsDoneWithTraversal():
        out.append(it.GetCurrentDataObject())
        it.GoToNextItem()
    return out


for job in json.loads(open(sys.argv[1]).read()):
    reader = OpenDataFile(job["path"])
    times = list(reader.TimestepValues) if reader.TimestepValues else [0.0]
    arrays = {"times": np.asarray(times, dtype=float)}
    for k, t in enumerate(times):
        reader.UpdatePipeline(t)
        for i, leaf in enumerate(leaves(servermanager.Fetch(reader))):
            pd = leaf.GetPointData()
            for a in range(pd.GetNumberOfArrays()):
                arrays[f"{k}/{i}/{pd.GetArrayName(a)}"] = vtk_to_numpy(pd.GetArray(a)).copy()  # VTK reuses the memory
            arrays[f"{k}/{i}/points"] = np.array([leaf.GetPoint(j) for j in range(leaf.GetNumberOfPoints())])
    np.savez(job["npz"], **arrays)
    view = GetActiveViewOrCreate("RenderView")
    view.ViewSize = [240, 240]
    view.ViewTime = times[-1]
    shown = Show(reader, view)  # ParaView's default representation for the data
    shown.PointSize = 12.0  # point clouds (steady stores) drawn visibly; surfaces are unaffected
    ColorBy(shown, ("POINTS", job["color"]))
    shown.RescaleTransferFunctionToDataRange(True, False)
    ResetCamera(view)
    Render(view)
    SaveScreenshot(job["png"], view)
    Hide(reader, view)
    print("read", job["path"], reader.GetXMLName(), len(times), "steps", flush=True)
