"""Receipt printers: ESC/POS thermal printers (USB or a device file), PDF files, and a simulator.

Open one by URL (:func:`drivers.printer.opener.open_printer`), like every other device:

    escpos+usb://0416:5011          an ESC/POS printer on USB (vendor:product, hex)
    escpos+file:///dev/usb/lp0      an ESC/POS printer behind a device file (usblp)
    pdf:///var/lib/station/receipts/last.pdf   a PDF file (a page rendered like the paper)
    sim://printer                   python-escpos's Dummy: the bytes a printer would receive

A receipt is a :class:`~drivers.printer.document.ReceiptDocument` (Latin lines, right-to-left
lines, a QR payload, the font files). Right-to-left text (Urdu) is printed as a raster image shaped
with the same font file the screen uses (Pillow with libraqm), since thermal printers have no
Nastaliq. One thread owns an open printer (:class:`~drivers.printer.owner.PrinterOwner`); errors are
the drivers' :class:`~drivers.errors.DeviceError` tree.
"""
