"""The packet format shared by station and central: sealed envelopes and strict CBOR reading.

``packetformat.packet`` seals, parses, verifies and opens packets; ``packetformat.cbor`` is the one
bounded, tag-free, canonical-only CBOR reader used for every CBOR document that comes from outside.
Neither imports anything else of ours, so the station, the sync agent and central can all use them.
"""
