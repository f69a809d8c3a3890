"""The resources the protocol creates on Graph, one module each (see worker.protocol.target)."""
